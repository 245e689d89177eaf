"""Features folders on disk: one float32 ``.npy`` per layer and an index, read as memory maps.

A features folder holds one ``<layer>.npy`` (float32, ``n_frames x dim``) per layer and
``features.json`` (frame rate, frame count, layer widths in saved order, and the parameters
the features depend on). It is written into a temporary sibling folder, row block by row block
as frames become final, and renamed into place when complete, so a reader never sees a
half-written folder. :mod:`bids_w2v.features.cache` names these folders by a content hash.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from bids_w2v.errors import InputError
from bids_w2v.features.extract import Features, RowWriter

__all__ = ["LazyLayers", "has_layers", "load_features", "save_features", "write_folder"]

_INDEX = "features.json"


class _NpyRows:
    """A float32 ``.npy`` file of known shape, filled row block by row block with plain writes
    (no memory map, so written pages never count in the process' memory)."""

    def __init__(self, path: Path, n_rows: int, dim: int) -> None:
        header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, dim))
        self.offset, self.row_bytes = header.offset, 4 * dim
        del header
        self.handle = open(path, "r+b")  # noqa: SIM115 - closed by close()

    def write(self, start: int, rows: np.ndarray) -> None:
        self.handle.seek(self.offset + start * self.row_bytes)
        self.handle.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())

    def close(self) -> None:
        self.handle.close()


class LazyLayers(Mapping):
    """Layers of a cache entry, each memory-mapped (read-only) only when it is accessed, so a
    caller that handles one layer at a time only has that layer's pages mapped."""

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.folder, self.names = folder, list(names)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(name)
        path = self.folder / f"{name}.npy"
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"The features file '{path}' cannot be read ({exc}). Delete its folder "
                f"'{self.folder}' and extract the features again."
            ) from exc

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"LazyLayers({str(self.folder)!r}, {self.names})"


def _read_index(folder: Path) -> dict:
    path = folder / _INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"'{folder}' is not a readable bids-w2v features folder ({path.name}: {exc}). "
            "Delete it and extract the features again."
        ) from exc
    if not isinstance(index, dict) or not {"frame_rate", "n_frames", "layers"} <= set(index):
        raise InputError(
            f"'{path}' is not a bids-w2v features index (frame_rate, n_frames and layers are "
            "expected). Delete the folder and extract the features again."
        )
    return index


def _check_layer_file(path: Path, n_frames: int, dim: int) -> None:
    """Check a layer file's header and size without reading its data."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
        size = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise InputError(
            f"The features file '{path}' cannot be read ({exc}). Delete its folder and "
            "extract the features again."
        ) from exc
    expected = offset + 4 * n_frames * dim
    if shape != (n_frames, dim) or dtype != np.float32 or fortran or size != expected:
        raise InputError(
            f"The features file '{path}' is incomplete or not what its index describes (shape "
            f"{shape}, {size} bytes; expected ({n_frames}, {dim}) float32). Delete its folder "
            "and extract the features again."
        )


def load_features(path: str | os.PathLike[str]) -> Features:
    """Open features written by :func:`save_features` or the cache, without reading them.

    Parameters
    ----------
    path : str or path-like
        Features folder (a cache entry).

    Returns
    -------
    Features
        Layers in the order they were saved; each layer is a read-only ``numpy.memmap``
        mapped when accessed.

    Raises
    ------
    InputError
        If the folder is missing, incomplete or not a features folder.
    """
    folder = Path(path)
    index = _read_index(folder)
    n_frames = int(index["n_frames"])
    for name, dim in index["layers"].items():
        _check_layer_file(folder / f"{name}.npy", n_frames, int(dim))
    return Features(LazyLayers(folder, list(index["layers"])), float(index["frame_rate"]))


def write_folder(folder: Path, fill, extra: Mapping | None = None) -> None:
    """Create ``folder`` atomically: ``fill(open_sink)`` writes the layers (returning the frame
    rate) into a temporary sibling folder, which is renamed onto ``folder`` when complete.
    If another writer's complete entry appears first, it is kept and ours is dropped."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    writers: dict[str, _NpyRows] = {}
    shape: dict = {}
    try:

        def open_sink(n_frames: int, dims: Mapping[str, int]) -> RowWriter:
            shape.update(n_frames=int(n_frames), layers={k: int(v) for k, v in dims.items()})
            for name, dim in dims.items():
                writers[name] = _NpyRows(tmp / f"{name}.npy", n_frames, dim)
            return lambda name, start, rows: writers[name].write(start, rows)

        frame_rate = fill(open_sink)
        for writer in writers.values():
            writer.close()
        index = {"frame_rate": float(frame_rate), **shape, "params": dict(extra or {})}
        (tmp / _INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")  # layer order kept
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another job's entry won the race
    except BaseException:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_features(path: str | os.PathLike[str], features: Features) -> None:
    """Write in-memory features to a features folder atomically.

    Parameters
    ----------
    path : str or path-like
        Destination folder (must not exist yet); written under a temporary name first.
    features : Features
        One array per layer plus the frame rate.
    """
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in features.layers.items()}
    n_frames = features.n_frames

    def fill(open_sink) -> float:
        write = open_sink(n_frames, {name: a.shape[1] for name, a in arrays.items()})
        for name, array in arrays.items():
            write(name, 0, array)
        return features.frame_rate

    write_folder(Path(path), fill)


def has_layers(entry: Path, layers: Sequence[str]) -> bool:
    """Whether a cache entry is complete and holds every layer (headers only are read)."""
    try:
        index = _read_index(entry)
        if not all(name in index["layers"] for name in layers):
            return False
        for name in layers:
            _check_layer_file(entry / f"{name}.npy", int(index["n_frames"]), index["layers"][name])
    except InputError:
        return False
    return True
