"""Precomputed features of each stimulus (``--features-dir DIR``) as feature spaces.

DIR holds the files ``--save-features`` writes, laid out like the dataset's ``stimuli/``
folder (a previous run's ``OUTPUT_DIR/stimuli``; a folder with a ``stimuli/`` subfolder, such
as that ``OUTPUT_DIR``, is read from its ``stimuli/``): for a stimulus ``stimuli/<sub>/<stem>.wav``,
``DIR/<sub>/<stem>_desc-<label>_features.npy``, a 2-D array (frames x units, frame ``j`` at
``j / FrameRate`` s) with a JSON sidecar of the same name holding ``FrameRate`` (Hz) and
optionally ``Layer`` and ``ModelLabel``. Files sharing a ``ModelLabel`` form one feature space
whose layers are the ``Layer`` values (ordered by ``LayerIndex`` when given); without them, the
``desc`` label names both the space and its single layer, so hand-made annotations enter as
``<stem>_desc-<name>_features.npy`` with ``{"FrameRate": 100}``.

Every file is validated (a 2-D finite numeric array, a positive frame rate shared by all the
space's files, features spanning the stimulus within one second, every stimulus present) and
must lie inside DIR once links are resolved. The validated arrays are copied into a features
folder of the cache, keyed by their content, and enter the pipeline as a model's features.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from bids_w2v.errors import InputError

__all__ = [
    "FeatureSpace",
    "check_precomputed",
    "feature_root",
    "find_feature_spaces",
    "precomputed_entries",
]

_PATTERN = re.compile(r"^(?P<stem>[^/]+?)_desc-(?P<desc>[A-Za-z0-9]+)_features\.npy$")
#: Largest mismatch tolerated between the features' span and the stimulus' duration (s).
SPAN_TOLERANCE_S = 1.0


class FeatureSpace(dict):
    """``desc`` label -> (layer name, depth index) of one feature space found in DIR."""


def feature_root(features_dir: str | os.PathLike[str]) -> Path:
    """The folder laid out like ``stimuli/`` (DIR, or DIR/stimuli of a derivative root)."""
    root = Path(features_dir).expanduser()
    if not root.is_dir():
        raise InputError(
            f"The --features-dir folder '{root}' does not exist or is not a folder. Give the "
            "folder holding <stimulus>_desc-<label>_features.npy files (a previous run's "
            "OUTPUT_DIR/stimuli written with --save-features)."
        )
    if (root / "stimuli").is_dir():  # a derivative root (OUTPUT_DIR of --save-features)
        root = root / "stimuli"
    return root.resolve()


def _sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"The features file '{path}' has no JSON sidecar '{sidecar.name}'. Write one next "
            'to it with at least the frame rate, e.g. {"FrameRate": 100} (frames per second).'
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"The sidecar '{sidecar}' cannot be read as JSON ({exc}).") from exc
    rate = meta.get("FrameRate") if isinstance(meta, dict) else None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise InputError(
            f"The sidecar '{sidecar}' needs a positive number FrameRate (frames per second of "
            f"'{path.name}'; got {rate!r}). Add it, e.g. \"FrameRate\": 50 for a speech model."
        )
    return meta


def _space_of(desc: str, meta: dict[str, Any]) -> tuple[str, str]:
    label = re.sub(r"[^A-Za-z0-9]", "", str(meta.get("ModelLabel") or desc))
    layer = str(meta.get("Layer") or desc)
    if not label or not re.fullmatch(r"[A-Za-z0-9_-]+", layer):
        raise InputError(
            f"The sidecar of '{desc}' names the model {meta.get('ModelLabel')!r} and layer "
            f"{meta.get('Layer')!r}; use letters and digits (and - or _ in layer names)."
        )
    return label, layer


def find_feature_spaces(features_dir: str | os.PathLike[str]) -> dict[str, FeatureSpace]:
    """The feature spaces of DIR: label -> its layers, in depth order.

    Raises
    ------
    InputError
        If DIR is missing, holds no features file, or a sidecar is missing or invalid.
    """
    root = feature_root(features_dir)
    spaces: dict[str, dict[str, tuple[str, int | None]]] = {}
    for path in sorted(root.rglob("*_features.npy")):
        match = _PATTERN.match(path.name)
        if not match:
            continue
        desc = match["desc"]
        meta = _sidecar(path)
        label, layer = _space_of(desc, meta)
        index = meta.get("LayerIndex")
        spaces.setdefault(label, {})[desc] = (layer, index if isinstance(index, int) else None)
    if not spaces:
        raise InputError(
            f"The --features-dir folder '{root}' holds no <stimulus>_desc-<label>_features.npy "
            "file. Point it at the folder --save-features wrote (OUTPUT_DIR/stimuli) or at "
            "files named that way with a JSON sidecar giving FrameRate."
        )
    ordered = {}
    for label, descs in spaces.items():
        items = sorted(descs.items(), key=lambda kv: (kv[1][1] is None, kv[1][1] or 0, kv[0]))
        ordered[label] = FeatureSpace(
            {
                desc: (layer, i if index is None else index)
                for i, (desc, (layer, index)) in enumerate(items)
            }
        )
    return ordered


def _inside(root: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise InputError(
            f"The features file '{path}' resolves to '{resolved}', outside the --features-dir "
            f"folder '{root}'. Copy the file into that folder instead of linking outside it."
        )
    return resolved


def _read(path: Path, rate: float, duration: float | None) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"The features file '{path}' cannot be read as a numpy array ({exc}). Save it with "
            "numpy.save(path, array) of a float array, frames x units."
        ) from exc
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(
            f"The features file '{path}' has shape {array.shape}; a 2-D array frames x units is "
            "expected (a single feature as one column: array.reshape(-1, 1))."
        )
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise InputError(
            f"The features file '{path}' holds non-finite or non-numeric values ({array.dtype}); "
            "replace NaN/inf (e.g. by 0 where a feature is absent) and save a float array."
        )
    span = array.shape[0] / rate
    if duration is not None and abs(span - duration) > SPAN_TOLERANCE_S:
        raise InputError(
            f"The features file '{path}' spans {span:.2f} s ({array.shape[0]} frames at "
            f"{rate:g} Hz) but its stimulus lasts {duration:.2f} s. Check FrameRate in the "
            f"sidecar and that the file belongs to this stimulus (frame j is at j / FrameRate s)."
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _space(root: Path, label: str) -> FeatureSpace:
    spaces = find_feature_spaces(root)
    if label not in spaces:
        raise InputError(
            f"The --features-dir folder '{root}' has no feature space '{label}' (found: "
            f"{', '.join(sorted(spaces))})."
        )
    return spaces[label]


def _stimulus_arrays(
    root: Path, label: str, stimuli: Sequence[str], stimuli_dir: str | os.PathLike[str]
) -> Iterator[tuple[dict[str, np.ndarray], float, str]]:
    """Validated layers of each stimulus: (arrays by layer, frame rate, content hash)."""
    from bids_w2v.errors import BidsW2VError
    from bids_w2v.inputs.audio import audio_duration

    space = _space(root, label)
    rates: set[float] = set()
    for stim in stimuli:
        rel = os.path.relpath(stim, stimuli_dir)
        if rel.startswith(".."):
            rel = os.path.basename(stim)
        rel_path = PurePosixPath(rel.replace(os.sep, "/"))
        stem = rel_path.name.split(".")[0]
        arrays, digest = {}, hashlib.sha256(label.encode())
        try:
            duration: float | None = audio_duration(stim)
        except (OSError, RuntimeError, BidsW2VError):  # the audio is checked on its own
            duration = None
        for desc, (layer, _) in space.items():
            path = root.joinpath(*rel_path.parent.parts, f"{stem}_desc-{desc}_features.npy")
            if not path.is_file():
                raise InputError(
                    f"The --features-dir folder '{root}' has no features of the space '{label}' "
                    f"(layer {layer}) for the stimulus '{rel}': '{path}' is missing. Every "
                    "stimulus of the selected runs needs one file per layer."
                )
            path = _inside(root, path)
            rate = float(_sidecar(path)["FrameRate"])
            rates.add(rate)
            arrays[layer] = _read(path, rate, duration)
            digest.update(f"{layer}|{rate}|".encode() + arrays[layer].tobytes())
        frames = {a.shape[0] for a in arrays.values()}
        if len(rates) > 1 or len(frames) > 1:
            raise InputError(
                f"The layers of the feature space '{label}' in '{root}' differ in frame rate "
                f"({sorted(rates)} Hz) or frame count ({sorted(frames)}) for '{rel}'. One space "
                "has one frame rate; give differently sampled features different labels."
            )
        yield arrays, rate, digest.hexdigest()


def check_precomputed(
    features_dir: str | os.PathLike[str],
    label: str,
    stimuli: Sequence[str],
    stimuli_dir: str | os.PathLike[str],
) -> None:
    """Validate one space's features of every stimulus before any fit (nothing is written).

    Raises
    ------
    InputError
        As :func:`precomputed_entries`.
    """
    for _ in _stimulus_arrays(feature_root(features_dir), label, stimuli, stimuli_dir):
        pass


def precomputed_entries(
    features_dir: str | os.PathLike[str],
    label: str,
    stimuli: Sequence[str],
    stimuli_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
) -> tuple[list[Path], list[str], list[int], dict[str, Any]]:
    """Validate one space's features of every stimulus and copy them to cache folders.

    Returns
    -------
    tuple
        The features folder of each stimulus (readable by
        :func:`bids_w2v.features.storage.load_features`), the layer names and depth indices,
        and the identity recorded in sidecars.

    Raises
    ------
    InputError
        If a stimulus has no file of a layer, a file is invalid or lies outside DIR, or the
        frame rates differ.
    """
    from bids_w2v.features.storage import has_layers, write_folder

    root = feature_root(features_dir)
    space = _space(root, label)
    layers = [layer for layer, _ in space.values()]
    indices = [int(index) for _, index in space.values()]
    entries, rate = [], 0.0
    for arrays, rate, digest in _stimulus_arrays(root, label, stimuli, stimuli_dir):
        entry = Path(cache_dir) / f"precomputed-{digest}"
        if not has_layers(entry, layers):

            def fill(open_sink, arrays=arrays, rate=rate) -> float:
                n_frames = next(iter(arrays.values())).shape[0]
                write = open_sink(n_frames, {k: v.shape[1] for k, v in arrays.items()})
                for name, array in arrays.items():
                    write(name, 0, array)
                return rate

            write_folder(entry, fill, extra={"features_dir": str(root), "label": label})
        entries.append(entry)
    info = {
        "Model": f"precomputed features ({root})",
        "ModelLabel": label,
        "ModelType": "precomputed",
        "FeaturesDir": str(root),
        "FrameRate": rate,
    }
    return entries, layers, indices, info
