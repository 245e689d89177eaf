"""Content-addressed on-disk cache of extracted features, read back as memory maps.

A cache entry is a folder ``<cache_dir>/<key>/`` holding one ``<layer>.npy`` (float32,
``n_frames x dim``) per layer and ``features.json`` (frame rate, frame count, layer widths and
the parameters hashed into the key). The key hashes everything the features depend on: the
audio file's bytes, the model (name, weights hash, random init and seed, precision), the window,
the stride, causal mode, the layers and the package version.

Frames are written to the ``.npy`` files as soon as they are final, into a temporary folder that
is renamed onto the entry when complete, so memory stays flat for hours of audio and a reader
never sees a half-written entry. Concurrent jobs sharing a cache take a lock per key
(``<cache_dir>/.locks/<key>.lock``, ``fcntl.flock``): the first extracts, the others wait and
then read its entry; should two writers still race, the first rename wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from bids_w2v import __version__
from bids_w2v.errors import AudioError, InputError
from bids_w2v.features.extract import Features, RowWriter, stream_features
from bids_w2v.features.models import LoadedModel
from bids_w2v.inputs.audio import load_audio

__all__ = [
    "cached_features_path",
    "feature_cache_key",
    "file_sha256",
    "load_features",
    "load_or_extract",
    "save_features",
]

_INDEX = "features.json"
_FORMAT = 2  # entry layout version, part of the key


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes.

    Parameters
    ----------
    path : str or path-like
        File to hash.
    chunk_size : int, default 1 MiB
        Bytes read at a time.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _key_payload(
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool,
) -> dict:
    try:
        audio_hash = file_sha256(audio_path)
    except OSError as exc:
        raise AudioError(f"The audio stimulus '{audio_path}' cannot be read ({exc}).") from exc
    return {
        "audio_sha256": audio_hash,
        "model": loaded.name,
        "weights_sha256": loaded.weights_sha256,
        "random_init": loaded.random_init,
        "seed": loaded.seed,
        "dtype": loaded.dtype,
        "sampling_rate": loaded.sampling_rate,
        "do_normalize": loaded.do_normalize,
        "window_s": None if window_s is None else float(window_s),
        "stride_s": float(stride_s),
        "causal": bool(causal),
        "layers": sorted(layers),
        "version": __version__,
        "format": _FORMAT,
    }


def feature_cache_key(
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
) -> str:
    """Return the cache key of the features of one stimulus.

    Parameters
    ----------
    audio_path : str or path-like
        Stimulus file (its bytes are hashed, not its name).
    loaded : LoadedModel
        The model (its name, weights hash, random init, seed and dtype enter the key; the
        device does not).
    layers : sequence of str
        Extracted layers (order does not matter).
    window_s : float or None
        Window length in seconds (None for a single pass).
    stride_s : float
        Stride in seconds.
    causal : bool, default False
        Causal extraction.

    Returns
    -------
    str
        Hex SHA-256 identifying the features.
    """
    payload = _key_payload(
        audio_path, loaded, layers=layers, window_s=window_s, stride_s=stride_s, causal=causal
    )
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


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


class _LazyLayers(Mapping):
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
        return f"_LazyLayers({str(self.folder)!r}, {self.names})"


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
    return Features(_LazyLayers(folder, list(index["layers"])), float(index["frame_rate"]))


def _write_folder(folder: Path, fill, extra: Mapping | None = None) -> None:
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

    _write_folder(Path(path), fill)


def _has_layers(entry: Path, layers: Sequence[str]) -> bool:
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


@contextlib.contextmanager
def _locked(cache_dir: Path, key: str) -> Iterator[None]:
    """Exclusive lock of one cache key among processes (released when the block ends)."""
    locks = cache_dir / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _discard(entry: Path) -> None:
    """Remove a damaged entry: renamed away first, so no reader sees it half-deleted."""
    trash = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".old", dir=entry.parent))
    try:
        os.replace(entry, trash / "entry")
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)


def _ensure_cached(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool,
    batch_size: int,
    progress: bool | str,
    replace: bool = False,
) -> Path:
    """Return the cache entry of a stimulus, extracting it on a miss."""
    options = {"layers": layers, "window_s": window_s, "stride_s": stride_s, "causal": causal}
    payload = _key_payload(audio_path, loaded, **options)
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    cache_dir = Path(cache_dir)
    entry = cache_dir / key
    if not replace and _has_layers(entry, layers):
        return entry
    with _locked(cache_dir, key):
        if not replace and _has_layers(entry, layers):  # written by a job we waited for
            return entry
        if entry.exists():
            _discard(entry)
        audio = load_audio(audio_path, loaded.sampling_rate)
        label = f"{loaded.label} {Path(audio_path).name}" if progress else False

        def fill(open_sink) -> float:
            try:
                return stream_features(
                    loaded, audio, open_sink, batch_size=batch_size, progress=label, **options
                )
            except AudioError as exc:
                raise AudioError(
                    f"The audio stimulus '{audio_path}' cannot be used: {exc}"
                ) from exc

        _write_folder(entry, fill, extra=payload)
    return entry


def cached_features_path(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
    batch_size: int = 4,
    progress: bool = False,
) -> Path:
    """Make sure a stimulus' features are cached and return the cache entry's folder.

    Same parameters as :func:`load_or_extract`; on a hit only the entry's index and the layer
    files' headers are read.

    Returns
    -------
    Path
        ``<cache_dir>/<key>/``, readable with :func:`load_features`.
    """
    layers = list(dict.fromkeys(layers))
    return _ensure_cached(
        cache_dir,
        audio_path,
        loaded,
        layers=layers,
        window_s=window_s,
        stride_s=stride_s,
        causal=causal,
        batch_size=batch_size,
        progress=progress,
    )


def load_or_extract(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
    batch_size: int = 4,
    progress: bool = False,
) -> Features:
    """Return cached features of a stimulus, extracting and caching them on a miss.

    Parameters
    ----------
    cache_dir : str or path-like
        Cache folder (created if needed).
    audio_path : str or path-like
        Stimulus file.
    loaded : LoadedModel
        The model.
    layers : sequence of str
        Layers to extract.
    window_s : float or None
        Window length in seconds (None for a single pass).
    stride_s : float
        Stride in seconds.
    causal : bool, default False
        Causal extraction (see :func:`bids_w2v.features.extract.stream_features`).
    batch_size : int, default 4
        Windows processed together (does not change the features, so not part of the key).
    progress : bool, default False
        Show a progress bar while extracting.

    Returns
    -------
    Features
        The features, with layers in the order given, each a read-only memory map of the
        cache entry. An unreadable cache entry is replaced.
    """
    layers = list(dict.fromkeys(layers))
    settings = {
        "layers": layers,
        "window_s": window_s,
        "stride_s": stride_s,
        "causal": causal,
        "batch_size": batch_size,
        "progress": progress,
    }
    entry = _ensure_cached(cache_dir, audio_path, loaded, **settings)
    try:
        features = load_features(entry)
    except InputError:  # damaged after the check: replace the entry
        entry = _ensure_cached(cache_dir, audio_path, loaded, replace=True, **settings)
        features = load_features(entry)
    return Features(_LazyLayers(entry, layers), features.frame_rate)
