"""Extracted features as BIDS-style derivative files (``--save-features``).

Each layer of each stimulus is written to
``OUTPUT_DIR/stimuli/<stimulus path without extension>_desc-<model><Layer>_features.npy``
(float32, frames x units, frame ``j`` at ``j / FrameRate`` seconds) with a JSON sidecar naming
the model, the layer and every extraction setting. Files are copied atomically from the feature
cache; a file whose sidecar records the same cache entry is left as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from bids_w2v.outputs.atomic import atomic_write, write_json

__all__ = ["export_features", "feature_derivative_path"]


def _desc(model_label: str, layer: str) -> str:
    from bids_w2v.outputs.names import layer_desc

    return layer_desc(model_label, layer)


def feature_derivative_path(
    output_dir: str | os.PathLike[str], stim_relpath: str, model_label: str, layer: str
) -> Path:
    """Return where the features of one layer and stimulus are written.

    Parameters
    ----------
    output_dir : str or path-like
        Root of the derivative dataset.
    stim_relpath : str
        Stimulus path relative to the raw dataset's ``stimuli/`` folder (``stim_file``).
    model_label, layer : str
        Model label and layer name, combined into ``desc-<model><Layer>``.

    Returns
    -------
    Path
        ``output_dir/stimuli/<stem>_desc-<model><Layer>_features.npy``.
    """
    rel = PurePosixPath(str(stim_relpath).replace(os.sep, "/"))
    name = f"{rel.name.split('.')[0]}_desc-{_desc(model_label, layer)}_features.npy"
    return Path(output_dir, "stimuli", *rel.parent.parts, name)


def export_features(
    entry: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    stim_relpath: str,
    *,
    model_label: str,
    layers: Sequence[str],
    layer_indices: Sequence[int],
    metadata: Mapping[str, Any],
) -> list[Path]:
    """Copy a cache entry's layers to BIDS-style derivative files with sidecars.

    Parameters
    ----------
    entry : str or path-like
        Cache entry folder (:func:`bids_w2v.features.cache.cached_features_path`).
    output_dir : str or path-like
        Root of the derivative dataset.
    stim_relpath : str
        Stimulus path relative to ``stimuli/``.
    model_label : str
        Model label (``desc-`` prefix).
    layers, layer_indices : sequence
        Layers to write and their depth indices.
    metadata : mapping
        Model identity and extraction settings recorded in every sidecar.

    Returns
    -------
    list of Path
        The ``.npy`` files and their ``.json`` sidecars.
    """
    entry = Path(entry)
    index = json.loads((entry / "features.json").read_text(encoding="utf-8"))
    written = []
    for layer, depth in zip(layers, layer_indices, strict=True):
        target = feature_derivative_path(output_dir, stim_relpath, model_label, layer)
        sidecar = target.with_suffix(".json")
        meta = {
            **metadata,
            "Layer": layer,
            "LayerIndex": int(depth),
            "FrameRate": float(index["frame_rate"]),
            "Shape": [int(index["n_frames"]), int(index["layers"][layer])],
            "Units": "frames x units, float32; frame j starts at j / FrameRate s",
            "Sources": [f"bids:raw:stimuli/{PurePosixPath(str(stim_relpath)).as_posix()}"],
            "FeatureCacheKey": entry.name,
        }
        if not (target.is_file() and sidecar.is_file() and _same(sidecar, meta)):
            source = entry / f"{layer}.npy"
            atomic_write(target, lambda tmp, src=source: shutil.copyfile(src, tmp), ".npy")
            write_json(sidecar, meta)
        written += [target, sidecar]
    return written


def _same(sidecar: Path, meta: Mapping[str, Any]) -> bool:
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")) == json.loads(json.dumps(meta))
    except (OSError, ValueError):
        return False
