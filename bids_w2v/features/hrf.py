"""Turn model activations into fMRI regressors: HRF convolution sampled at the scan times.

Every model frame is one event (onset = frame time, duration = frame period, amplitude =
activation), convolved with an HRF and sampled at the scan times: exactly what nilearn's
:func:`nilearn.glm.first_level.compute_regressor` does for one feature. Calling it once per
feature (768 features x 19 layers x runs) is slow, so :func:`convolve_features` applies the same
linear operations (nilearn's high-resolution grid, onset/offset impulses, HRF kernel, linear
interpolation) to all features at once with an FFT convolution.
``tests/features/test_hrf.py`` checks it
against ``compute_regressor`` column by column, for every HRF model offered:

* ``glover``, ``spm``: one regressor per feature;
* ``glover + derivative``, ``spm + derivative``: two per feature, the time derivative
  orthogonalised with respect to the main regressor (as nilearn does);
* ``fir``: one per feature and delay (``fir_delays``, in scans): the feature averaged over one
  scan and delayed by that many scans, the delayed copies of voxelwise modelling (Huth et al.).

With several regressors per feature the output holds one block of ``n_features`` columns per
kernel (derivative or delay), in that order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nilearn.glm.first_level import (
    glover_hrf,
    glover_time_derivative,
    spm_hrf,
    spm_time_derivative,
)
from scipy.signal import fftconvolve

HRF_MODELS = {
    "glover": (glover_hrf,),
    "spm": (spm_hrf,),
    "glover + derivative": (glover_hrf, glover_time_derivative),
    "spm + derivative": (spm_hrf, spm_time_derivative),
    "fir": (),
}


def normalize_hrf_model(hrf_model: str) -> str:
    """nilearn's name of an HRF model (``glover+derivative`` -> ``glover + derivative``)."""
    name = " + ".join(part.strip() for part in hrf_model.split("+"))
    if name not in HRF_MODELS:
        raise ValueError(f"unknown hrf_model {hrf_model!r}; choose from {sorted(HRF_MODELS)}")
    return name


def hrf_kernels(
    hrf_model: str, tr: float, oversampling: int, fir_delays: Sequence[int] = ()
) -> list[np.ndarray]:
    """The kernels of an HRF model on nilearn's oversampled grid (nilearn's ``_hrf_kernel``).

    Parameters
    ----------
    hrf_model : str
        See :data:`HRF_MODELS`.
    tr : float
        Repetition time (seconds).
    oversampling : int
        Samples per scan of the high-resolution grid.
    fir_delays : sequence of int
        Delays in scans (``fir`` only).

    Returns
    -------
    list of ndarray
        One kernel per regressor of each feature.
    """
    name = normalize_hrf_model(hrf_model)
    if name != "fir":
        return [f(tr, oversampling) for f in HRF_MODELS[name]]
    delays = [int(d) for d in fir_delays]
    if not delays or min(delays) < 0:
        raise ValueError("the fir HRF model needs fir_delays: scan delays >= 0, e.g. 1 2 3 4")
    return [
        np.hstack((np.zeros(d * oversampling), np.full(oversampling, 1.0 / oversampling)))
        for d in delays
    ]


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
    fir_delays: Sequence[int] = (),
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
    hrf_model : str
        nilearn HRF model: ``glover``, ``spm``, ``glover + derivative``, ``spm + derivative``
        (``glover+derivative`` is accepted too) or ``fir``.
    oversampling : int
        Temporal oversampling of the convolution (nilearn's default, 50).
    min_onset : float
        Events before ``frame_times[0] + min_onset`` are ignored (nilearn's default, -24 s).
    chunk : int
        Features convolved at once (bounds memory).
    fir_delays : sequence of int
        Delays in scans of the ``fir`` model.

    Returns
    -------
    ndarray, shape (n_scans, n_features * n_regressors)
        The regressors (float32), identical to ``compute_regressor`` on each feature; one block
        of ``n_features`` columns per kernel (``n_regressors`` is 1, 2 with the time derivative,
        or one per FIR delay).
    """
    name = normalize_hrf_model(hrf_model)
    frame_times = np.asarray(frame_times, dtype=float)
    tr = float(np.min(np.diff(frame_times)))
    grid = _high_res_grid(frame_times, oversampling, min_onset)
    tmax = grid.size
    kernels = hrf_kernels(name, tr, oversampling, fir_delays)
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

    # linear interpolation from the high-res grid to the scan times; nilearn samples the FIR
    # regressors on a grid shifted by oversampling - 1 samples
    shift = oversampling - 1 if name == "fir" and oversampling > 1 else 0
    sample_grid = grid[: tmax - shift]
    right = np.clip(np.searchsorted(sample_grid, frame_times, side="right"), 1, tmax - shift - 1)
    left = right - 1
    w_right = (frame_times - sample_grid[left]) / (sample_grid[right] - sample_grid[left])
    w_left = 1.0 - w_right

    n_kernels = len(kernels)
    out = np.empty((frame_times.size, n_features * n_kernels), dtype=np.float32)
    for start in range(0, n_features, chunk):
        block = values[:, start : start + chunk].astype(np.float64)
        impulses = np.zeros((tmax, block.shape[1]))
        np.add.at(impulses, on_all, block)
        np.add.at(impulses, off_all, -block)
        hr = np.cumsum(impulses, axis=0)
        previous: list[np.ndarray] = []
        for k, kernel in enumerate(kernels):
            conv = fftconvolve(hr, kernel[:, None], axes=0)[:tmax][shift:]
            sampled = w_left[:, None] * conv[left] + w_right[:, None] * conv[right]
            if name != "fir":  # nilearn's orthogonalize(), feature by feature
                for prev in previous:
                    norm = np.einsum("ij,ij->j", prev, prev)
                    coef = np.einsum("ij,ij->j", sampled, prev) / np.where(norm > 0, norm, 1.0)
                    sampled = sampled - prev * np.where(norm > 0, coef, 0.0)
                previous.append(sampled)
            cols = slice(k * n_features + start, k * n_features + start + block.shape[1])
            out[:, cols] = sampled
    return out


def scan_times(n_scans: int, tr: float, slice_time_ref: float = 0.0) -> np.ndarray:
    """Acquisition times of the scans (seconds), nilearn's ``frame_times`` convention."""
    return (np.arange(n_scans) + slice_time_ref) * tr
