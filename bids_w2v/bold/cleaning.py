"""Load and clean preprocessed BOLD with nilearn (confounds regression, z-scoring per run).

Volumes (NIfTI + brain mask), GIfTI surface pairs and CIFTI dense time series are all loaded
as a (scans x vertices) array by :func:`load_bold`, then cleaned the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import nibabel as nb
import numpy as np
from nilearn import signal

from bids_w2v.bold.confounds import ScanTrim, kept_scans, load_run_confounds
from bids_w2v.inputs.preflight import reading
from bids_w2v.spaces import MapSpace, as_space


def load_bold(
    bold: Path | Sequence[Path], mask: MapSpace | nb.Nifti1Image | Path
) -> tuple[np.ndarray, MapSpace]:
    """Load one run's BOLD inside the participant's map space, as (scans x voxels/vertices).

    Parameters
    ----------
    bold : Path or sequence of Path
        A NIfTI, a ``(hemi-L, hemi-R)`` pair of GIfTIs, or a CIFTI ``.dtseries.nii``.
    mask : MapSpace, Nifti1Image or Path
        The map space (from :class:`~bids_w2v.interfaces.bold.BrainMask`, or its file), or a
        NIfTI brain mask.

    Returns
    -------
    data : ndarray, shape (n_scans, n_features)
        Raw time series (float32).
    space : MapSpace
        The map space, loaded.
    """
    files = [Path(bold)] if isinstance(bold, (str, Path)) else [Path(b) for b in bold]
    space = as_space(mask)
    with reading(files):  # a truncated or unfetched file: one paragraph naming it
        return space.load(files), space


def confounds_lookup(bold: Sequence[Path]) -> str | list[str]:
    """What to give nilearn's ``load_confounds`` to find the confounds of ``bold``.

    nilearn finds the confounds file from the image's entities and accepts GIfTI pairs only
    under fMRIPrep's current names (``hemi-L_space-X_bold.func.gii``); the older orders
    (``space-X_hemi-L[_bold].func.gii``) are renamed here (the names are only parsed).
    """
    files = [Path(b) for b in bold]
    if len(files) == 1:
        return str(files[0])
    out = []
    for path in files:
        stem = path.name[: -len(".func.gii")]
        parts = [p for p in stem.split("_") if p != "bold"]
        hemi = next(p for p in parts if p.startswith("hemi-"))
        space = [p for p in parts if p.startswith("space-")]
        rest = [p for p in parts if p != hemi and p not in space]
        out.append(str(path.with_name("_".join(rest + [hemi] + space + ["bold.func.gii"]))))
    return out


def clean_bold(
    bold: Path | Sequence[Path],
    mask: MapSpace | nb.Nifti1Image | Path,
    *,
    tr: float,
    confounds_strategy: tuple[str, ...],
    dummy_scans: int = 0,
    trim: tuple[int, int] = (0, 0),
    high_pass: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Regress fMRIPrep confounds out of a run and z-score every voxel.

    Parameters
    ----------
    bold : Path or sequence of Path
        fMRIPrep preprocessed BOLD (its ``desc-confounds_timeseries.tsv`` beside it): a NIfTI,
        a ``(hemi-L, hemi-R)`` GIfTI pair or a CIFTI dense time series.
    mask : MapSpace, Nifti1Image or Path
        The map space (or its file), or a brain mask on the BOLD grid.
    tr : float
        Repetition time (seconds).
    confounds_strategy : tuple of str
        ``("none",)``, a nilearn preset (``simple``, ``scrubbing``, ``compcor``) or
        ``load_confounds`` components (e.g. ``("motion", "wm_csf", "high_pass")``);
        see :mod:`bids_w2v.bold.confounds`.
    dummy_scans : int
        First volumes dropped (``--dummy-scans``).
    trim : (int, int)
        Volumes dropped at the start and at the end (``--trim-scans``).
    high_pass : float, optional
        Butterworth high-pass cutoff in Hz (``--high-pass``), applied while cleaning.

    Returns
    -------
    data : ndarray, shape (n_kept_scans, n_voxels)
        Cleaned, z-scored time series (float32).
    kept : ndarray of int
        Indices of the scans kept (nilearn's sample mask: non-steady-state volumes dropped).
    """
    files = [Path(bold)] if isinstance(bold, (str, Path)) else [Path(b) for b in bold]
    bold = files[0]
    raw, _ = load_bold(files, mask)
    n_scans = raw.shape[0]
    confounds, sample_mask = load_run_confounds(
        confounds_lookup(files), n_scans, confounds_strategy, source=bold
    )
    kept = kept_scans(
        n_scans,
        sample_mask,
        dummy_scans=dummy_scans,
        trim=ScanTrim(*trim),
        n_confounds=0 if confounds is None else confounds.shape[1],
        source=bold,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = signal.clean(  # as NiftiMasker(standardize="zscore_sample").fit_transform
            raw,
            confounds=confounds,
            sample_mask=None if kept.size == n_scans else kept,
            detrend=False,
            high_pass=high_pass,
            standardize="zscore_sample",
            standardize_confounds=True,
            t_r=tr,
        )
    return np.asarray(data, dtype=np.float32), kept
