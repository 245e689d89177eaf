"""Write brain-score maps as BIDS derivatives (NIfTI, GIfTI or CIFTI + JSON sidecar, atomically).

The maps take the input's form: a NIfTI volume on the brain mask's grid, one ``.func.gii`` per
hemisphere (``hemi-L``/``hemi-R``), or a ``.dscalar.nii`` on the input's brain-model axis.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np

from bids_w2v.outputs.atomic import write_json
from bids_w2v.outputs.names import layer_desc, statmap_path
from bids_w2v.spaces import MapSpace, as_space, space_of_image

MAP_EXTENSIONS = (".nii.gz", ".func.gii", ".dscalar.nii", ".nii")


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the finite values (None when there is none: JSON has no NaN)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None


def sidecar_path(map_file: Path) -> Path:
    """The JSON sidecar beside a ``.nii.gz``, ``.func.gii`` or ``.dscalar.nii`` map."""
    map_file = Path(map_file)
    for ext in MAP_EXTENSIONS:
        if map_file.name.endswith(ext):
            return map_file.with_name(map_file.name[: -len(ext)] + ".json")
    raise ValueError(f"{map_file} is not a brain map ({', '.join(MAP_EXTENSIONS)})")


def read_sidecar(nii: Path) -> dict:
    """The JSON sidecar of a map written by :func:`write_statmap` (any of its forms)."""
    return json.loads(sidecar_path(nii).read_text())


def load_map_data(path: Path) -> np.ndarray:
    """The values of a brain map of any form, as float64.

    A NIfTI gives its 3-D array, a ``.func.gii`` its vertices, a ``.dscalar.nii`` its first
    row of grayordinates. Use :func:`save_map_like` to write values back in the same form.
    """
    img = nb.load(str(path))
    return space_of_image(img).map_values(img)


def save_map_like(values: np.ndarray, reference: Path, path: Path, *, name: str = "") -> Path:
    """Atomically write ``values`` as a map of the same form and geometry as ``reference``.

    Parameters
    ----------
    values : ndarray
        Shaped as :func:`load_map_data` returns for ``reference``.
    reference : Path
        An existing map (NIfTI, ``.func.gii`` or ``.dscalar.nii``).
    path : Path
        Output file (same extension as ``reference``).
    name : str
        Map name stored in GIfTI/CIFTI metadata.

    Returns
    -------
    Path
        ``path``.
    """
    ref = nb.load(str(reference))
    space = space_of_image(ref)
    return space.write_map(space.map_like(values, ref, name=name), path)


def write_statmap(
    values: np.ndarray,
    mask_img: MapSpace | nb.Nifti1Image,
    sidecar: Mapping[str, Any],
    output_dir: Path,
    **entities: Any,
) -> list[Path]:
    """Write one statistical map (one file per hemisphere on GIfTI surfaces) and sidecars.

    Parameters
    ----------
    values : ndarray, shape (n_voxels_in_mask,)
        Map values in mask order.
    mask_img : MapSpace or Nifti1Image
        The map space (or NIfTI brain mask) the values come from; it decides the output's
        form.
    sidecar : mapping
        JSON metadata.
    output_dir : Path
        Root of the derivative dataset.
    **entities
        Passed to :func:`bids_w2v.outputs.names.statmap_path`.

    Returns
    -------
    list of Path
        The maps written (without the sidecars).
    """
    name = f"{entities.get('desc', '')} {entities.get('stat', '')}".strip()
    space = as_space(mask_img)
    written = []
    for hemi, img in space.to_map(values, name=name).items():
        where = {**entities, "hemi": hemi} if hemi else dict(entities)
        write_json(statmap_path(output_dir, extension=".json", **where), dict(sidecar))
        path = statmap_path(output_dir, extension=space.extension, **where)
        written.append(space.write_map(img, path))
    return written


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


def _excluded_counts(result: Mapping[str, np.ndarray]) -> dict[str, int] | int:
    """Voxels left out of a fit: by reason when the fit recorded it, else their number."""
    if "n_excluded_nonfinite" in result and "n_excluded_constant" in result:
        return {
            "NonFinite": int(result["n_excluded_nonfinite"]),
            "Constant": int(result["n_excluded_constant"]),
        }
    return int(np.sum(result["excluded"]))


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q over the finite entries (NaN kept)."""
    from scipy import stats

    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def _write_significance(
    result: Mapping[str, np.ndarray], mask_img: MapSpace, meta: dict, output_dir: Path, **entities
) -> list[Path]:
    """``stat-p``, ``stat-q`` and ``stat-rthresh`` maps of one layer (``--participant-stats``)."""
    from bids_w2v.encoding.significance import PARTICIPANT_FDR_Q, PARTICIPANT_TEST

    p = np.asarray(result["pvalues"], dtype=np.float64)
    q = _bh(p)
    scores = np.asarray(result["scores"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        significant = np.isfinite(q) & (q < PARTICIPANT_FDR_Q)
    meta = {**meta, "Test": PARTICIPANT_TEST}
    written = write_statmap(
        p, mask_img, {**meta, "Statistic": "p"}, output_dir, stat="p", **entities
    )
    written += write_statmap(
        q,
        mask_img,
        {**meta, "Statistic": "q", "Correction": "Benjamini-Hochberg FDR over voxels"},
        output_dir,
        stat="q",
        **entities,
    )
    written += write_statmap(
        np.where(significant, scores, np.nan),
        mask_img,
        {
            **meta,
            "Statistic": "pearson_r_thresholded",
            "Description": f"Brain score where q < {PARTICIPANT_FDR_Q:g}, NaN elsewhere.",
            "FDRLevel": PARTICIPANT_FDR_Q,
            "SignificantVoxels": int(significant.sum()),
        },
        output_dir,
        stat="rthresh",
        **entities,
    )
    return written


def write_participant_maps(
    results: Sequence[Mapping[str, np.ndarray]],
    layers: Sequence[str],
    layer_indices: Sequence[int],
    mask_img: MapSpace | nb.Nifti1Image,
    *,
    output_dir: Path,
    subject: str,
    task: str,
    space: str,
    res: str | None,
    model_label: str,
    den: str | None = None,
    metadata: Mapping[str, Any],
) -> list[Path]:
    """Write a participant's brain-score map per layer, its peak-layer and best-alpha maps, and
    with ``pvalues`` in the results (``--participant-stats``) the ``stat-p``, ``stat-q`` and
    ``stat-rthresh`` maps of each layer.

    Parameters
    ----------
    results : sequence of mapping
        Per layer: ``scores`` (n_voxels,), ``fold_scores``, ``alphas`` (n_folds, n_voxels),
        ``excluded`` (n_voxels,).
    layers, layer_indices : sequence
        Layer names and depth indices, aligned with ``results``.
    mask_img : MapSpace or Nifti1Image
        Map space (or NIfTI brain mask) the voxels come from: NIfTI, GIfTI or CIFTI outputs.
    output_dir : Path
        Root of the derivative dataset.
    subject, task, space, res : str
        BIDS entities.
    den : str, optional
        CIFTI density entity (``91k``).
    model_label : str
        Alphanumeric model label.
    metadata : mapping
        Common sidecar fields (model, cross-validation, HRF, sources...).

    Returns
    -------
    list of Path
        Files written.
    """
    mask_img = as_space(mask_img)
    common = {"task": task, "space": space, "res": res, "den": den, "subject": subject}
    written = []
    scores = np.stack([np.asarray(r["scores"], dtype=np.float64) for r in results])
    for name, index, res_ in zip(layers, layer_indices, results, strict=True):
        sidecar = {
            **metadata,
            "LayerName": name,
            "LayerIndex": int(index),
            "Statistic": "pearson_r",
            "FoldScoresMean": [_nanmean(f) for f in res_["fold_scores"]],
            "ExcludedVoxels": _excluded_counts(res_),
        }
        written.extend(
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
    written.extend(
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
    for name, index, res_ in zip(layers, layer_indices, results, strict=True):
        if "pvalues" in res_:
            written.extend(
                _write_significance(
                    res_,
                    mask_img,
                    {**metadata, "LayerName": name, "LayerIndex": int(index)},
                    output_dir,
                    desc=layer_desc(model_label, name),
                    **common,
                )
            )
    written.extend(
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
