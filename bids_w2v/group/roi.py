"""Regions of interest: read a label atlas on the maps' grid and summarise scores per region."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.group.statistics import sem_across_subjects
from bids_w2v.spaces import VertexSpace, VolumeSpace

WHOLE_BRAIN = "wholebrain"


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".label.gii", ".dlabel.nii", ".nii.gz", ".nii", ".gii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def read_roi_names(atlas: Path) -> dict[int, str]:
    """Names of the atlas' labels from the TSV beside it (columns ``index`` and ``name``).

    ``atlas.nii.gz`` -> ``atlas.tsv``; a BIDS-style ``*_dseg.nii.gz`` -> ``*_dseg.tsv``.
    Without a TSV, labels are named ``roi<index>``.

    Parameters
    ----------
    atlas : Path
        The label image.

    Returns
    -------
    dict
        Label value -> name (empty when there is no TSV).
    """
    atlas = Path(atlas)
    tsv = atlas.with_name(_stem(atlas) + ".tsv")
    if not tsv.exists():
        return {}
    with tsv.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"index", "name"} <= set(rows[0]):
        raise InputError(
            f"The ROI names file {tsv} must be a tab-separated table with the columns 'index' "
            "(the label value in the atlas) and 'name'; fix its header."
        )
    try:
        return {int(float(row["index"])): str(row["name"]) for row in rows}
    except ValueError:
        raise InputError(
            f"The 'index' column of {tsv} must hold the integer label values of the atlas."
        ) from None


def _surface_labels(atlas: Path, grid) -> np.ndarray:
    """Labels of a GIfTI label pair (``hemi-L`` given, ``hemi-R`` beside it) or of a CIFTI
    ``.dlabel.nii``, in the order of the group's values (L then R; grayordinates)."""
    files = grid.space.label_files(atlas)
    parts = []
    for path, size in zip(files, grid.sizes, strict=True):
        if not path.exists():
            raise InputError(
                f"The ROI atlas file {path} is missing: surface atlases need one GIfTI label "
                "file per hemisphere, named alike but for hemi-L/hemi-R."
            )
        try:
            img = nb.load(str(path))
            data = (
                np.asarray(img.darrays[0].data)
                if isinstance(img, nb.GiftiImage)
                else np.asarray(img.dataobj)[0]
            )
        except Exception as exc:  # nibabel raises several types on unreadable files
            raise InputError(
                f"The ROI atlas {path} could not be read as a label file ({exc})."
            ) from None
        if data.shape != (size,):
            raise InputError(
                f"The ROI atlas {path} has {data.size} vertices (grayordinates) but the maps "
                f"have {size}: it must be on the mesh of the participant maps (--space)."
            )
        parts.append(data)
    return np.concatenate(parts)


def load_atlas(atlas: Path, ref_img) -> tuple[np.ndarray, dict[int, str]]:
    """Read a label atlas on the grid of the maps (resampled by nearest neighbour if needed).

    Parameters
    ----------
    atlas : Path
        Label NIfTI (integers, 0 = background), a GIfTI label file per hemisphere (the hemi-L
        one given) for surface maps, or a ``.dlabel.nii`` for CIFTI maps; optionally with a
        names TSV beside it.
    ref_img : Nifti1Image or bids_w2v.group.collection.MapGrid
        A map of the group analysis (its grid is the target), or the group's map grid.

    Returns
    -------
    labels : ndarray of int, shape ref_img.shape[:3]
        Label of each voxel.
    names : dict
        Label value -> name, for every label present.
    """
    atlas = Path(atlas)
    if not atlas.exists():
        raise InputError(f"The ROI atlas {atlas} (--roi-atlas) does not exist.")
    space = getattr(ref_img, "space", VolumeSpace)  # a NIfTI image: volume maps
    if issubclass(space, VertexSpace):
        data = _surface_labels(atlas, ref_img)
        if not np.allclose(data, np.round(data)):
            raise InputError(f"The ROI atlas {atlas} holds non-integer values.")
        labels = np.rint(data).astype(np.int64)
        present = sorted(int(v) for v in np.unique(labels) if v != 0)
        if not present:
            raise InputError(f"The ROI atlas {atlas} has no labelled vertex.")
        names = read_roi_names(atlas)
        return labels, {v: names.get(v, f"roi{v}") for v in present}
    if hasattr(ref_img, "image"):
        ref_img = ref_img.image()
    if atlas.name.endswith(".gii"):
        raise InputError(
            f"The ROI atlas {atlas} is a GIfTI surface label file but the maps are volumes on "
            f"a {ref_img.shape[:3]} grid; give a label NIfTI in the maps' space instead."
        )
    try:
        img = nb.load(str(atlas))
    except Exception as exc:  # nibabel raises several types on unreadable files
        raise InputError(
            f"The ROI atlas {atlas} could not be read as NIfTI ({exc}); give a label image."
        ) from None
    if len(img.shape) > 3 and any(n > 1 for n in img.shape[3:]):
        raise InputError(
            f"The ROI atlas {atlas} is 4-D ({img.shape}); give a 3-D label image (one integer "
            "label per voxel, 0 for background), not a probabilistic atlas."
        )
    data = np.asarray(img.dataobj)
    if not np.allclose(data, np.round(data)):
        raise InputError(
            f"The ROI atlas {atlas} holds non-integer values; a label image holds one integer "
            "label per voxel (0 for background)."
        )
    same_grid = img.shape[:3] == ref_img.shape[:3] and np.allclose(
        img.affine, ref_img.affine, atol=1e-3
    )
    if not same_grid:
        from nilearn.image import resample_to_img

        img = resample_to_img(
            nb.Nifti1Image(data.reshape(img.shape[:3]).astype(np.int32), img.affine),
            ref_img,
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
        data = np.asarray(img.dataobj)
    labels = np.rint(data).astype(np.int64).reshape(ref_img.shape[:3])
    present = sorted(int(v) for v in np.unique(labels) if v != 0)
    if not present:
        raise InputError(
            f"The ROI atlas {atlas} has no labelled voxel on the grid of the maps: is it in the "
            "same space as the participant maps (--space)?"
        )
    names = read_roi_names(atlas)
    return labels, {v: names.get(v, f"roi{v}") for v in present}


def roi_summary(
    scores: np.ndarray,
    layers: Sequence[str],
    layer_indices: Sequence[int],
    labels: np.ndarray | None,
    names: dict[int, str],
    group_peaks: np.ndarray,
    model_label: str,
) -> pd.DataFrame:
    """Scores per region, layer and model: mean, s.e.m. across subjects and peak share.

    Parameters
    ----------
    scores : ndarray, shape (n_layers, n_subjects, n_voxels)
        Brain scores (NaN outside a subject's mask).
    layers, layer_indices : sequence
        Layer names and depth indices (rows of ``scores``).
    labels : ndarray of int, shape (n_voxels,), or None
        Region label per voxel (0 = none); None for the whole-brain row only.
    names : dict
        Label -> name.
    group_peaks : ndarray, shape (n_voxels,)
        The group peak layer (``LayerIndex``) per voxel.
    model_label : str
        Model the scores come from.

    Returns
    -------
    DataFrame
        Columns ``model, roi_index, roi, layer, layer_index, mean, sem, n_subjects,
        n_voxels, percent_peak``; the whole brain is ``roi_index`` -1, ``roi`` 'wholebrain'.
        Per subject the region's mean over its voxels is taken first; mean and s.e.m. are then
        across subjects; ``percent_peak`` is the share of the region's voxels whose group peak
        layer is this layer.
    """
    inside = np.isfinite(scores).any(axis=(0, 1))
    regions = roi_regions(inside, labels, names)
    per_layer = [
        roi_layer_rows(scores[row], layer, layer_index, regions, group_peaks, model_label)
        for row, (layer, layer_index) in enumerate(zip(layers, layer_indices, strict=True))
    ]
    return roi_table(per_layer)


def roi_regions(
    inside: np.ndarray, labels: np.ndarray | None, names: dict[int, str]
) -> list[tuple[int, str, np.ndarray]]:
    """(label, name, voxels) of the whole brain (``inside``: voxels any participant has in any
    layer) and of each atlas region."""
    regions = [(-1, WHOLE_BRAIN, inside)]
    if labels is not None:
        regions += [(v, names[v], (labels == v) & inside) for v in sorted(names)]
    return regions


def roi_table(per_layer: Sequence[Sequence[dict]]) -> pd.DataFrame:
    """The ROI table from :func:`roi_layer_rows` of each layer: rows by region, then layer."""
    n_regions = len(per_layer[0]) if per_layer else 0
    return pd.DataFrame([rows[r] for r in range(n_regions) for rows in per_layer])


def roi_layer_rows(
    layer_scores: np.ndarray,
    layer: str,
    layer_index: int,
    regions: Sequence[tuple[int, str, np.ndarray]],
    group_peaks: np.ndarray,
    model_label: str,
) -> list[dict]:
    """One row per region of the ROI table for one layer (``layer_scores``: subjects x
    voxels); see :func:`roi_summary`."""
    rows = []
    for index, name, where in regions:
        n_vox = int(where.sum())
        values = np.asarray(layer_scores[:, where], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(values)
            counts = finite.sum(axis=1)
            per_subject = np.where(
                counts > 0,
                np.where(finite, values, 0).sum(axis=1) / np.maximum(counts, 1),
                np.nan,
            )
        ok = np.isfinite(per_subject)
        peaks_here = group_peaks[where]
        rows.append(
            {
                "model": model_label,
                "roi_index": index,
                "roi": name,
                "layer": layer,
                "layer_index": int(layer_index),
                "mean": float(per_subject[ok].mean()) if ok.any() else np.nan,
                "sem": float(sem_across_subjects(per_subject[ok][:, None])[0]),
                "n_subjects": int(ok.sum()),
                "n_voxels": n_vox,
                "percent_peak": float(100 * np.mean(peaks_here == layer_index))
                if n_vox
                else np.nan,
            }
        )
    return rows


#: ``--roi-atlas templateflow:ATLAS[:DESC]`` looks the atlas up in ``TEMPLATEFLOW_HOME``.
TEMPLATEFLOW_PREFIX = "templateflow:"


def resolve_roi_atlas(value: str, *, space: str, res: str | None) -> Path:
    """The label file of ``--roi-atlas``: a path, or a TemplateFlow atlas of the maps' space.

    ``templateflow:ATLAS[:DESC]`` lists (never downloads) the ``dseg`` files of atlas ``ATLAS``
    (and ``desc-DESC``) of template ``space`` (and ``res-``) in ``TEMPLATEFLOW_HOME``:
    ``templateflow:HarvardOxford:cort-maxprob-thr25`` in ``MNI152NLin2009cAsym``,
    ``templateflow:Destrieux`` on ``fsaverage`` (the ``hemi-L`` label file of the pair).

    Parameters
    ----------
    value : str
        The option's value.
    space, res : str
        The participant maps' space and resolution (``--space``).

    Returns
    -------
    Path
        An existing label file.

    Raises
    ------
    InputError
        If the file does not exist, the specification is malformed, or not exactly one
        TemplateFlow file matches (the message lists the matches and how to fetch the atlas).
    """
    if not value.startswith(TEMPLATEFLOW_PREFIX):
        path = Path(value).absolute()
        if not path.is_file():
            raise InputError(
                f"The ROI atlas {value} (--roi-atlas) does not exist; give a label image in the "
                "space of the participant maps, or templateflow:ATLAS[:DESC] for an atlas in "
                "TEMPLATEFLOW_HOME."
            )
        return path
    parts = value[len(TEMPLATEFLOW_PREFIX) :].split(":")
    if len(parts) > 2 or not all(re.fullmatch(r"[A-Za-z0-9-]+", p) for p in parts):
        raise InputError(
            f"--roi-atlas {value}: expected templateflow:ATLAS or templateflow:ATLAS:DESC with "
            "BIDS labels (letters, digits, '-'), e.g. "
            "templateflow:HarvardOxford:cort-maxprob-thr25."
        )
    atlas, desc = parts[0], (parts[1] if len(parts) == 2 else None)
    import os

    from templateflow import api  # lists the local TEMPLATEFLOW_HOME; ls() never downloads

    query = {"atlas": atlas, "suffix": "dseg"}
    if desc is not None:
        query["desc"] = desc
    surface = space.startswith("fsaverage") or space in ("fsLR", "fsnative")
    if surface:
        query["hemi"] = "L"
    elif res is not None:
        query["resolution"] = int(res) if res.isdigit() else res
    try:
        found = [Path(p) for p in api.ls(space, **query)]
    except Exception:  # noqa: BLE001 - an unknown template or a broken home: listed as none
        found = []
    found = [p for p in found if not p.name.endswith((".tsv", ".json"))]
    usable = [p for p in found if p.is_file() and p.stat().st_size > 0]
    if len(usable) != 1:
        home = os.environ.get("TEMPLATEFLOW_HOME", "~/.cache/templateflow")
        listed = ", ".join(p.name for p in found) or "none"
        raise InputError(
            f"--roi-atlas {value}: {len(usable)} TemplateFlow files of atlas '{atlas}'"
            f"{f' (desc-{desc})' if desc else ''} for template {space}"
            f"{f' at res-{res}' if res and not surface else ''} in TEMPLATEFLOW_HOME={home} "
            f'(found: {listed}). Fetch it where there is internet (python -c "from '
            f"templateflow import api; api.get('{space}', atlas='{atlas}', suffix='dseg')\") and "
            "point TEMPLATEFLOW_HOME at that folder, add :DESC to choose one, or give the label "
            "image's path."
        )
    return usable[0]
