"""What the simulator writes besides the planted signal: fMRIPrep-like confounds with the
artefacts they only partly explain, GIfTI / CIFTI surface outputs, JSON sidecars.

Artefacts come from the TRUE head motion and tissue signals and from a slow drift; the
confounds file reports motion and tissue signals as an estimation would (the truth plus
estimation error) and the cosine basis of a 128 s high-pass filter, so the default cleaning
(motion, WM/CSF, high-pass) removes most of the artefacts, not all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
from nibabel import cifti2
from scipy.ndimage import uniform_filter1d

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
MEDIAL_WALL = 3  # constant vertices at the start of each simulated hemisphere


def write_json(path: Path, data: Mapping) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def zscore(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns only centred)."""
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)


def _ar1(n: int, k: int, rho: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((n, k))
    innovations = rng.standard_normal((n, k)) * scale
    for t in range(n):
        out[t] = (rho * out[t - 1] if t else 0.0) + innovations[t]
    return out


def confounds_and_artefacts(
    n_scans: int, tr: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """fMRIPrep-like confounds and the (n_scans, k) true sources of the artefacts.

    Returns
    -------
    confounds : DataFrame
        Reported motion (true motion + 20 % estimation error) with derivatives and squares,
        white matter / CSF / global signals (likewise), framewise displacement, cosines.
    sources : ndarray
        True motion, its squares (spin history), true WM / CSF signals and a slow smooth drift
        (not in the cosine basis), standardised.
    """
    motion = _ar1(n_scans, 6, 0.5, 0.05, rng)
    tissue = uniform_filter1d(rng.standard_normal((n_scans, 3)), 5, axis=0, mode="nearest")
    reported_motion = motion + 0.2 * motion.std(0) * rng.standard_normal(motion.shape)
    reported_tissue = tissue + 0.2 * tissue.std(0) * rng.standard_normal(tissue.shape)
    table = {col: reported_motion[:, i] for i, col in enumerate(MOTION)}
    for i, col in enumerate(("white_matter", "csf", "global_signal")):
        table[col] = reported_tissue[:, i]
    for col in list(table):
        deriv = np.r_[np.nan, np.diff(table[col])]
        table[f"{col}_derivative1"] = deriv
        table[f"{col}_power2"] = table[col] ** 2
        table[f"{col}_derivative1_power2"] = deriv**2
    fd = np.abs(np.diff(reported_motion[:, :3], axis=0)).sum(1) + 50 * np.abs(
        np.diff(reported_motion[:, 3:], axis=0)
    ).sum(1)
    table["framewise_displacement"] = np.r_[np.nan, fd]
    n_cos = int(np.floor(2 * n_scans * tr / 128.0))
    t = np.arange(n_scans)
    for k in range(1, n_cos + 1):
        table[f"cosine{k - 1:02d}"] = np.sqrt(2.0 / n_scans) * np.cos(
            np.pi * (2 * t + 1) * k / (2 * n_scans)
        )
    drift = uniform_filter1d(np.cumsum(rng.standard_normal(n_scans)), 31, mode="nearest")
    sources = np.column_stack([motion, motion[:, :3] ** 2, tissue[:, :2], drift])
    return pd.DataFrame(table), zscore(sources)


def surface_layout(n_features: int) -> tuple[int, int, int]:
    """Cortical vertices per hemisphere (left, right) and subcortical voxels of the simulation."""
    n_cortex = int(round(0.8 * n_features))
    n_left = n_cortex // 2
    return n_left, n_cortex - n_left, n_features - n_cortex


def _brain_models(n_features: int) -> cifti2.BrainModelAxis:
    """A small CIFTI brain-model axis: left and right cortex, and a few thalamus voxels."""
    n_left, n_right, n_sub = surface_layout(n_features)
    left = cifti2.BrainModelAxis.from_surface(
        np.arange(n_left) + MEDIAL_WALL, n_left + MEDIAL_WALL, "CortexLeft"
    )
    right = cifti2.BrainModelAxis.from_surface(
        np.arange(n_right) + MEDIAL_WALL, n_right + MEDIAL_WALL, "CortexRight"
    )
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask.reshape(-1)[:n_sub] = True
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    sub = cifti2.BrainModelAxis.from_mask(mask, "ThalamusLeft", affine=affine)
    return left + right + sub


def write_surfaces(
    dfunc: Path, stem: str, data: np.ndarray, tr: float, space: str, sidecar: Mapping
) -> None:
    """Write one run's (n_scans, n_features) data as fMRIPrep's GIfTI pair or CIFTI file."""
    if space in ("fsLR",):
        n_scans = data.shape[0]
        series = cifti2.SeriesAxis(start=0.0, step=tr, size=n_scans, unit="SECOND")
        img = cifti2.Cifti2Image(
            data.astype(np.float32), header=(series, _brain_models(data.shape[1]))
        )
        img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
        name = f"{stem}_space-{space}_den-91k_bold"
        img.to_filename(dfunc / f"{name}.dtseries.nii")
        write_json(dfunc / f"{name}.json", sidecar)
        return
    n_left, n_right, _ = surface_layout(data.shape[1])
    parts = {"L": data[:, :n_left], "R": data[:, n_left : n_left + n_right]}
    for hemi, values in parts.items():
        full = np.zeros((values.shape[0], values.shape[1] + MEDIAL_WALL), dtype=np.float32)
        full[:, MEDIAL_WALL:] = values
        darrays = [
            nb.gifti.GiftiDataArray(row, intent="NIFTI_INTENT_TIME_SERIES", datatype="float32")
            for row in full
        ]
        meta = {"AnatomicalStructurePrimary": "CortexLeft" if hemi == "L" else "CortexRight"}
        name = f"{stem}_hemi-{hemi}_space-{space}_bold"
        nb.save(
            nb.GiftiImage(darrays=darrays, meta=nb.gifti.GiftiMetaData(meta)),
            dfunc / f"{name}.func.gii",
        )
        write_json(dfunc / f"{name}.json", sidecar)


def surface_truth(truth: pd.DataFrame, n_vox: int) -> pd.DataFrame:
    """Add ``grayordinate``, ``hemi`` and ``vertex`` (GIfTI; empty and -1 off the cortex)."""
    n_left, n_right, _ = surface_layout(n_vox)
    feature = np.arange(n_vox)
    truth["grayordinate"] = feature
    truth["hemi"] = np.where(feature < n_left, "L", np.where(feature < n_left + n_right, "R", ""))
    truth["vertex"] = np.where(
        feature < n_left,
        feature + MEDIAL_WALL,
        np.where(feature < n_left + n_right, feature - n_left + MEDIAL_WALL, -1),
    )
    return truth
