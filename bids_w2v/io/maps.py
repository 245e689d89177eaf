"""Write brain-score maps as BIDS derivatives (NIfTI + JSON sidecar, atomically)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np

from bids_w2v.io.atomic import write_json, write_nifti
from bids_w2v.io.derivatives import layer_desc, statmap_path


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the finite values (None when there is none: JSON has no NaN)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None


def read_sidecar(nii: Path) -> dict:
    """The JSON sidecar of a ``.nii.gz`` map written by :func:`write_statmap`."""
    nii = Path(nii)
    return json.loads(nii.with_name(nii.name.replace(".nii.gz", ".json")).read_text())


def to_volume(values: np.ndarray, mask_img: nb.Nifti1Image) -> nb.Nifti1Image:
    """Place in-mask values in a 3-D image (NaN outside the mask; float32)."""
    mask = np.asarray(mask_img.dataobj) > 0
    vol = np.full(mask.shape, np.nan, dtype=np.float32)
    vol[mask] = values
    header = mask_img.header.copy()
    header.set_data_dtype(np.float32)
    return nb.Nifti1Image(vol, mask_img.affine, header)


def from_volume(img: nb.Nifti1Image, mask_img: nb.Nifti1Image) -> np.ndarray:
    """Read in-mask values from a 3-D image."""
    mask = np.asarray(mask_img.dataobj) > 0
    return np.asarray(img.dataobj, dtype=np.float64)[mask]


def write_statmap(
    values: np.ndarray,
    mask_img: nb.Nifti1Image,
    sidecar: Mapping[str, Any],
    output_dir: Path,
    **entities: Any,
) -> Path:
    """Write one statistical map and its JSON sidecar.

    Parameters
    ----------
    values : ndarray, shape (n_voxels_in_mask,)
        Map values in mask order.
    mask_img : Nifti1Image
        The mask the values come from.
    sidecar : mapping
        JSON metadata.
    output_dir : Path
        Root of the derivative dataset.
    **entities
        Passed to :func:`bids_w2v.io.derivatives.statmap_path`.

    Returns
    -------
    Path
        The NIfTI written.
    """
    nii = statmap_path(output_dir, extension=".nii.gz", **entities)
    write_json(statmap_path(output_dir, extension=".json", **entities), dict(sidecar))
    write_nifti(nii, to_volume(values, mask_img))
    return nii


def peak_layer(scores: np.ndarray, layer_indices: Sequence[int]) -> np.ndarray:
    """Per voxel, the depth index of the layer with the highest score (NaN if none is finite).

    Parameters
    ----------
    scores : ndarray, shape (n_layers, n_voxels)
        Brain scores.
    layer_indices : sequence of int
        Depth index of each row.

    Returns
    -------
    ndarray, shape (n_voxels,)
    """
    finite = np.isfinite(scores)
    best = np.argmax(np.where(finite, scores, -np.inf), axis=0)
    out = np.asarray(layer_indices, dtype=np.float64)[best]
    out[~finite.any(axis=0)] = np.nan
    return out


def write_participant_maps(
    results: Sequence[Mapping[str, np.ndarray]],
    layers: Sequence[str],
    layer_indices: Sequence[int],
    mask_img: nb.Nifti1Image,
    *,
    output_dir: Path,
    subject: str,
    task: str,
    space: str,
    res: str | None,
    model_label: str,
    metadata: Mapping[str, Any],
) -> list[Path]:
    """Write a participant's brain-score map per layer, its peak-layer and best-alpha maps.

    Parameters
    ----------
    results : sequence of mapping
        Per layer: ``scores`` (n_voxels,), ``fold_scores``, ``alphas`` (n_folds, n_voxels),
        ``excluded`` (n_voxels,).
    layers, layer_indices : sequence
        Layer names and depth indices, aligned with ``results``.
    mask_img : Nifti1Image
        Brain mask the voxels come from.
    output_dir : Path
        Root of the derivative dataset.
    subject, task, space, res : str
        BIDS entities.
    model_label : str
        Alphanumeric model label.
    metadata : mapping
        Common sidecar fields (model, cross-validation, HRF, sources...).

    Returns
    -------
    list of Path
        Files written.
    """
    common = {"task": task, "space": space, "res": res, "subject": subject}
    written = []
    scores = np.stack([np.asarray(r["scores"], dtype=np.float64) for r in results])
    for name, index, res_ in zip(layers, layer_indices, results, strict=True):
        sidecar = {
            **metadata,
            "LayerName": name,
            "LayerIndex": int(index),
            "Statistic": "pearson_r",
            "FoldScoresMean": [_nanmean(f) for f in res_["fold_scores"]],
            "ExcludedVoxels": int(np.sum(res_["excluded"])),
        }
        written.append(
            write_statmap(
                res_["scores"],
                mask_img,
                sidecar,
                output_dir,
                stat="r",
                desc=layer_desc(model_label, name),
                **common,
            )
        )
    peaks = peak_layer(scores, layer_indices)
    layer_table = {str(i): n for n, i in zip(layers, layer_indices, strict=True)}
    written.append(
        write_statmap(
            peaks,
            mask_img,
            {**metadata, "Statistic": "peak_layer", "Layers": layer_table},
            output_dir,
            stat="peaklayer",
            desc=layer_desc(model_label),
            **common,
        )
    )
    # alpha of each voxel's peak layer, geometric mean over outer folds
    log_alpha = np.stack([np.log10(np.asarray(r["alphas"], dtype=np.float64)) for r in results])
    best_row = np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=0)
    chosen = log_alpha[best_row, :, np.arange(scores.shape[1])]  # (n_voxels, n_folds)
    with warnings.catch_warnings():  # excluded voxels: all-NaN rows give NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        best_alpha = 10 ** np.nanmean(chosen, axis=1) if chosen.size else chosen
    best_alpha[np.isnan(peaks)] = np.nan
    written.append(
        write_statmap(
            best_alpha,
            mask_img,
            {
                **metadata,
                "Statistic": "ridge_alpha",
                "Description": "Ridge penalty at each voxel's peak layer (geometric "
                "mean over outer folds).",
            },
            output_dir,
            stat="alpha",
            desc=layer_desc(model_label),
            **common,
        )
    )
    return written
