"""Turn model activations into fMRI regressors: HRF convolution sampled at the scan times.

Every model frame is one event (onset = frame time, duration = frame period, amplitude =
activation), convolved with an HRF and sampled at the scan times: exactly what nilearn's
:func:`nilearn.glm.first_level.compute_regressor` does for one feature. Calling it once per
feature (768 features x 19 layers x runs) is slow, so :func:`convolve_features` applies the same
linear operations (nilearn's high-resolution grid, onset/offset impulses, HRF kernel, linear
interpolation) to all features at once with an FFT convolution. ``tests/test_hrf.py`` checks it
against ``compute_regressor`` column by column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nilearn.glm.first_level import glover_hrf, spm_hrf
from scipy.signal import fftconvolve

HRF_MODELS = {"glover": glover_hrf, "spm": spm_hrf}


def _high_res_grid(frame_times: np.ndarray, oversampling: int, min_onset: float) -> np.ndarray:
    """nilearn's oversampled time grid (``_sample_condition``)."""
    n = frame_times.size
    mini, maxi = float(frame_times.min()), float(frame_times.max())
    n_hr = (n - 1) / (maxi - mini) * (maxi * (1 + 1.0 / (n - 1)) - mini - min_onset)
    n_hr = n_hr * oversampling + 1
    return np.linspace(mini + min_onset, maxi * (1 + 1.0 / (n - 1)), int(np.rint(n_hr)))


def convolve_features(
    features: Sequence[np.ndarray],
    onsets: Sequence[float],
    frame_rate: float,
    frame_times: np.ndarray,
    *,
    hrf_model: str = "glover",
    oversampling: int = 50,
    min_onset: float = -24.0,
    chunk: int = 128,
) -> np.ndarray:
    """Convolve frame-wise features with an HRF and sample them at the scan times.

    Parameters
    ----------
    features : sequence of ndarray, each (n_frames_i, n_features)
        Activations of one layer for each stimulus presentation of the run.
    onsets : sequence of float
        Onset (seconds, relative to the first scan) of each presentation.
    frame_rate : float
        Model frames per second; frame ``j`` starts ``j / frame_rate`` s after the onset.
    frame_times : ndarray, shape (n_scans,)
        Acquisition time of each scan (seconds).
    hrf_model : {"glover", "spm"}
        HRF of nilearn.
    oversampling : int
        Temporal oversampling of the convolution (nilearn's default, 50).
    min_onset : float
        Events before ``frame_times[0] + min_onset`` are ignored (nilearn's default, -24 s).
    chunk : int
        Features convolved at once (bounds memory).

    Returns
    -------
    ndarray, shape (n_scans, n_features)
        The regressors (float32), identical to ``compute_regressor`` on each feature.
    """
    if hrf_model not in HRF_MODELS:
        raise ValueError(f"unknown hrf_model {hrf_model!r}; choose from {sorted(HRF_MODELS)}")
    frame_times = np.asarray(frame_times, dtype=float)
    tr = float(np.min(np.diff(frame_times)))
    grid = _high_res_grid(frame_times, oversampling, min_onset)
    tmax = grid.size
    kernel = HRF_MODELS[hrf_model](tr, oversampling)
    n_features = features[0].shape[1]

    on_idx, off_idx, rows = [], [], []
    for feats, onset in zip(features, onsets, strict=True):
        if feats.shape[1] != n_features:
            raise ValueError("all presentations must have the same number of features")
        starts = onset + np.arange(feats.shape[0]) / frame_rate
        t_on = np.minimum(np.searchsorted(grid, starts), tmax - 1)
        t_off = np.minimum(np.searchsorted(grid, starts + 1.0 / frame_rate), tmax - 1)
        t_off = np.where((t_off < tmax - 1) & (t_off == t_on), t_off + 1, t_off)
        on_idx.append(t_on)
        off_idx.append(t_off)
        rows.append(feats)
    on_all, off_all = np.concatenate(on_idx), np.concatenate(off_idx)
    values = np.concatenate(rows, axis=0)

    # linear interpolation weights from the high-res grid to the scan times
    right = np.clip(np.searchsorted(grid, frame_times, side="right"), 1, tmax - 1)
    left = right - 1
    w_right = (frame_times - grid[left]) / (grid[right] - grid[left])
    w_left = 1.0 - w_right

    out = np.empty((frame_times.size, n_features), dtype=np.float32)
    for start in range(0, n_features, chunk):
        block = values[:, start : start + chunk].astype(np.float64)
        impulses = np.zeros((tmax, block.shape[1]))
        np.add.at(impulses, on_all, block)
        np.add.at(impulses, off_all, -block)
        hr = np.cumsum(impulses, axis=0)
        conv = fftconvolve(hr, kernel[:, None], axes=0)[:tmax]
        sampled = w_left[:, None] * conv[left] + w_right[:, None] * conv[right]
        out[:, start : start + chunk] = sampled
    return out


def scan_times(n_scans: int, tr: float, slice_time_ref: float = 0.0) -> np.ndarray:
    """Acquisition times of the scans (seconds), nilearn's ``frame_times`` convention."""
    return (np.arange(n_scans) + slice_time_ref) * tr
