"""Load and clean preprocessed BOLD with nilearn (confounds regression, z-scoring per run)."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nb
import numpy as np
from nilearn.interfaces.fmriprep import load_confounds
from nilearn.maskers import NiftiMasker
from nilearn.masking import intersect_masks

from bids_w2v.errors import InputError


def common_mask(mask_files: list[Path]) -> nb.Nifti1Image:
    """Intersect the brain masks of a participant's runs.

    Parameters
    ----------
    mask_files : list of Path
        One fMRIPrep ``desc-brain_mask`` per run.

    Returns
    -------
    Nifti1Image
        Voxels inside every run's mask.
    """
    imgs = [nb.load(str(m)) for m in mask_files]
    ref = imgs[0]
    for path, img in zip(mask_files, imgs, strict=True):
        if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-3):
            raise InputError(
                f"The brain mask {path} is not on the same grid as {mask_files[0]} (shapes "
                f"{img.shape[:3]} vs {ref.shape[:3]}). All runs must be in the same space and "
                "resolution: choose one with --space SPACE:res-N."
            )
    mask = intersect_masks(imgs, threshold=1.0, connected=False) if len(imgs) > 1 else ref
    if not np.asarray(mask.dataobj).any():
        raise InputError(
            f"The brain masks {', '.join(str(m) for m in mask_files)} have no voxel in common."
        )
    return mask


def clean_bold(
    bold: Path,
    mask: nb.Nifti1Image | Path,
    *,
    tr: float,
    confounds_strategy: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Regress fMRIPrep confounds out of a run and z-score every voxel.

    Parameters
    ----------
    bold : Path
        fMRIPrep preprocessed BOLD (its ``desc-confounds_timeseries.tsv`` beside it).
    mask : Nifti1Image or Path
        Brain mask on the BOLD grid.
    tr : float
        Repetition time (seconds).
    confounds_strategy : tuple of str
        nilearn ``load_confounds`` strategy (e.g. ``("motion", "wm_csf", "high_pass")``);
        empty or ``("none",)`` for no confound regression.

    Returns
    -------
    data : ndarray, shape (n_kept_scans, n_voxels)
        Cleaned, z-scored time series (float32).
    kept : ndarray of int
        Indices of the scans kept (nilearn's sample mask: non-steady-state volumes dropped).
    """
    bold = Path(bold)
    img = nb.load(str(bold))
    mask_img = nb.load(str(mask)) if isinstance(mask, (str, Path)) else mask
    if img.shape[:3] != mask_img.shape[:3]:
        raise InputError(
            f"The BOLD series {bold} (grid {img.shape[:3]}) and its brain mask (grid "
            f"{mask_img.shape[:3]}) are on different grids. Use the mask fMRIPrep wrote for "
            "the same space and resolution."
        )
    n_scans = img.shape[3]
    confounds, sample_mask = None, None
    strategy = tuple(s for s in confounds_strategy if s != "none")
    if strategy:
        try:
            confounds, sample_mask = load_confounds(str(bold), strategy=strategy)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            raise InputError(
                f"nilearn could not load the fMRIPrep confounds of {bold} with strategy "
                f"{', '.join(strategy)}: {exc}. The confounds file "
                "(..._desc-confounds_timeseries.tsv) must sit beside the BOLD file as fMRIPrep "
                "wrote it; or choose --confounds-strategy none."
            ) from None
        if len(confounds) != n_scans:
            raise InputError(
                f"The confounds of {bold} have {len(confounds)} rows but the BOLD has {n_scans} "
                "volumes. The confounds file must come from the same fMRIPrep run."
            )
    kept = np.arange(n_scans) if sample_mask is None else np.asarray(sample_mask, dtype=int)
    masker = NiftiMasker(mask_img=mask_img, standardize="zscore_sample", t_r=tr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = masker.fit_transform(
            img, confounds=confounds, sample_mask=None if sample_mask is None else kept
        )
    return np.asarray(data, dtype=np.float32), kept
