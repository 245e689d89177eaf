"""Is a participant's brain score above chance? Per-voxel p-values that respect autocorrelation.

The brain score is the mean over outer folds of the Pearson r between a voxel's held-out BOLD
and its prediction. Both series are autocorrelated (haemodynamics, slow drifts, smooth
features), so the textbook test of r (``n - 2`` degrees of freedom) is far too liberal; and the
fold scores are positively correlated (the folds share most of their training data), so a test
of their mean that treats folds as independent is liberal too. Compared on simulated AR(1) null
data by ``benchmarks/participant_significance.py`` (figures in ``benchmarks/README.md``):

* a null from circularly shifted held-out predictions (:func:`circular_shift_pvalues`; per
  fold, or of the mean over folds): liberal -- the shifts of one realisation under-estimate
  the spread of r (few, strongly overlapping shifts in a test block);
* Bartlett's effective degrees of freedom (:func:`fold_pvalues_effective_dof`): the variance
  of r between two independent autocorrelated series is ``(1/n) sum_tau rho_x(tau)
  rho_y(tau)`` (Bartlett 1935), estimated from the sample autocorrelations of the test block.
  Per fold it is at or below its nominal level.

:func:`participant_pvalues` (``--participant-stats``) therefore tests each fold by effective
degrees of freedom and combines the folds by Bonferroni (``min(1, K min_k p_k)``), which is
valid whatever the dependence between folds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

#: circular shifts closer than this fraction of the test fold to 0 (or to a full turn) are
#: not drawn: the series would still be aligned
MIN_SHIFT_FRACTION = 0.1
#: sample autocorrelations summed up to this fraction of the test fold (Bartlett's variance)
MAX_LAG_FRACTION = 0.25
#: default number of null draws of the circular-shift test
N_SHIFTS = 1000
#: FDR level of the thresholded participant maps (``stat-rthresh``)
PARTICIPANT_FDR_Q = 0.05
#: ``Test`` of the participant p-value sidecars
PARTICIPANT_TEST = (
    "one-sided test of each outer fold's Pearson r against 0 with Bartlett's effective degrees "
    "of freedom (variance (1/n) sum_tau rho_prediction(tau) rho_bold(tau), lags up to a quarter "
    "of the test block), Bonferroni over folds (min(1, K min_k p_k)); "
    "bids_w2v.encoding.significance"
)


def _standardised(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns centred and scaled to unit norm, and whether each column is non-constant."""
    a = a - a.mean(axis=0)
    norm = np.sqrt((a * a).sum(axis=0))
    ok = norm > 0
    return a / np.where(ok, norm, 1.0), ok


def _shifted_correlations(pred: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Pearson r of ``data[t]`` with ``pred[(t + s) % n]`` for every shift ``s`` (rows)."""
    p, ok_p = _standardised(pred)
    y, ok_y = _standardised(data)
    n = len(p)
    r = np.fft.irfft(np.fft.rfft(p, axis=0) * np.conj(np.fft.rfft(y, axis=0)), n=n, axis=0)
    r[:, ~(ok_p & ok_y)] = 0.0
    return r


def _acf_standardised(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags ``1..max_lag`` (linear, not circular) of columns already
    centred and scaled to unit norm (``_standardised``).

    The circular autocorrelation of the series zero-padded to ``m >= n + max_lag`` samples
    equals the linear one at lags ``<= max_lag`` (no pair of samples is ``m - lag >= n``
    apart), so ``m`` is the first fast FFT length from ``n + max_lag``, not ``2 n``. The
    inverse transform of the power spectrum is a product with the cosines of the ``max_lag``
    lags wanted (:func:`_lag_cosines`) rather than an inverse FFT of all ``m``.
    """
    from scipy import fft

    n = len(x)
    m = fft.next_fast_len(n + max_lag, real=True)
    f = fft.rfft(x, n=m, axis=0)
    power = f.real * f.real
    power += f.imag * f.imag
    return _lag_cosines(m, max_lag, np.dtype(x.dtype).name) @ power


@functools.lru_cache(maxsize=8)
def _lag_cosines(m: int, max_lag: int, dtype: str) -> np.ndarray:
    """The rows of the inverse real DFT of length ``m`` (``numpy.fft.irfft``) at lags
    ``1..max_lag``, applied to a real, even spectrum: ``w_f cos(2 pi f lag / m) / m`` with
    ``w_f = 2`` but for the constant and (``m`` even) the Nyquist frequency."""
    freq = np.arange(m // 2 + 1)
    weight = np.full(freq.size, 2.0)
    weight[0] = 1.0
    if m % 2 == 0:
        weight[-1] = 1.0
    lags = np.arange(1, max_lag + 1)[:, None]
    out = (weight * np.cos(2.0 * np.pi * ((lags * freq) % m) / m) / m).astype(dtype)
    out.flags.writeable = False  # (shared through the cache)
    return out


def circular_shift_pvalues(
    predictions: np.ndarray,
    data: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_shifts: int = N_SHIFTS,
    seed: int = 0,
    voxel_chunk: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-value of each voxel's brain score against circularly shifted predictions
    (liberal: see the module docstring).

    Parameters
    ----------
    predictions, data : ndarray, shape (n_samples, n_voxels)
        Held-out predictions (:func:`bids_w2v.encoding.cross_validated_scores` with
        ``return_predictions=True``) and the BOLD they predict.
    folds : sequence of (train_idx, test_idx)
        The outer folds of the fit (each test block is shifted within itself).
    n_shifts : int
        Null draws.
    seed : int
        Random state of the shifts (the same shifts for every voxel).
    voxel_chunk : int
        Voxels processed at once (bounds memory: ``n_samples x voxel_chunk`` float64).

    Returns
    -------
    score, pvalue : ndarray, shape (n_voxels,)
        The brain score (mean of the fold r) and its p-value; NaN where the prediction or the
        data is not finite.
    """
    rng = np.random.default_rng(seed)
    tests = [np.asarray(test) for _, test in folds]
    shifts = []
    for test in tests:
        lo = max(1, int(np.ceil(MIN_SHIFT_FRACTION * len(test))))
        hi = len(test) - lo
        if hi < lo:
            raise ValueError(f"a test fold of {len(test)} scans is too short to shift")
        shifts.append(rng.integers(lo, hi + 1, size=n_shifts))
    n_voxels = data.shape[1]
    score = np.full(n_voxels, np.nan)
    pvalue = np.full(n_voxels, np.nan)
    for start in range(0, n_voxels, voxel_chunk):
        cols = np.arange(start, min(start + voxel_chunk, n_voxels))
        ok = np.all(np.isfinite(predictions[:, cols]), axis=0) & np.all(
            np.isfinite(data[:, cols]), axis=0
        )
        cols = cols[ok]
        if not cols.size:
            continue
        observed = np.zeros(cols.size)
        null = np.zeros((n_shifts, cols.size))
        for test, shift in zip(tests, shifts, strict=True):
            r = _shifted_correlations(
                np.asarray(predictions[np.ix_(test, cols)], dtype=np.float64),
                np.asarray(data[np.ix_(test, cols)], dtype=np.float64),
            )
            observed += r[0]
            null += r[shift]
        observed /= len(tests)
        null /= len(tests)
        score[cols] = observed
        pvalue[cols] = (1.0 + np.sum(null >= observed - 1e-12, axis=0)) / (1.0 + n_shifts)
    return score, pvalue


def fold_pvalues_effective_dof(
    predictions: np.ndarray,
    data: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """One-sided p-value of each fold's r from Bartlett's variance (module docstring).

    Returns
    -------
    ndarray, shape (n_folds, n_voxels)
        NaN where the prediction or the data is not finite.
    """
    ok = np.all(np.isfinite(predictions), axis=0) & np.all(np.isfinite(data), axis=0)
    cols = np.flatnonzero(ok)
    out = np.full((len(folds), data.shape[1]), np.nan)
    for k, (_, test) in enumerate(folds):
        out[k, cols] = block_pvalues(predictions[np.ix_(test, cols)], data[np.ix_(test, cols)])
    return out


def block_pvalues(pred: np.ndarray, data: np.ndarray, block: int = 2048) -> np.ndarray:
    """One-sided p-value of the Pearson r between each column of ``pred`` and of ``data``
    (one outer fold's test block, finite values) from Bartlett's variance (module docstring).

    Computed in float32 when both inputs are float32 (the fit's predictions and BOLD: p-values
    within about 1e-4, relative, of float64's), else in float64; ``block`` columns at a time
    (work arrays that stay in the CPU's caches).
    """
    from scipy import stats

    dtype = np.result_type(pred.dtype, data.dtype, np.float32)
    out = np.empty(pred.shape[1])
    for start in range(0, pred.shape[1], block):
        part = slice(start, start + block)
        r, var = _r_and_variance(pred[:, part], data[:, part], dtype)
        out[part] = stats.norm.sf(r / np.sqrt(var))
    return out


def _r_and_variance(pred: np.ndarray, data: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of each column pair of a test block (0 where either is constant) and its
    Bartlett variance ``(1/n) (1 + 2 sum_{tau=1..L} rho_p(tau) rho_y(tau))`` (``L`` =
    :data:`MAX_LAG_FRACTION` of the block, floored at ``1/n``), computed in ``dtype``."""
    n = len(pred)
    p, ok_p = _standardised(np.asarray(pred, dtype=dtype))
    y, ok_y = _standardised(np.asarray(data, dtype=dtype))
    b = p.shape[1]
    both = _acf_standardised(np.concatenate([p, y], axis=1), max(1, int(MAX_LAG_FRACTION * n)))
    acf = (both[:, :b] * both[:, b:]).sum(axis=0, dtype=np.float64)
    var = np.maximum(1.0 + 2.0 * acf, 1.0 / n) / n
    r = np.einsum("ij,ij->j", p, y, dtype=np.float64)
    return np.where(ok_p & ok_y, r, 0.0), var


def bonferroni_folds(fold_p: np.ndarray) -> np.ndarray:
    """``min(1, K min_k p_k)``: one p-value per voxel from K fold p-values, valid under any
    dependence between folds."""
    fold_p = np.asarray(fold_p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.minimum(1.0, fold_p.shape[0] * fold_p.min(axis=0))


def participant_pvalues(
    predictions: np.ndarray,
    data: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    voxel_chunk: int = 20000,
) -> np.ndarray:
    """The test of ``--participant-stats``: per-fold effective degrees of freedom, Bonferroni
    over folds (module docstring). Voxels are processed ``voxel_chunk`` at a time.

    Parameters
    ----------
    predictions, data : ndarray, shape (n_samples, n_voxels)
        Held-out predictions (centred or not) and the BOLD they predict.
    folds : sequence of (train_idx, test_idx)
        The outer folds of the fit.
    voxel_chunk : int, default=20000
        Voxels read at once.

    Returns
    -------
    ndarray, shape (n_voxels,)
        One-sided p-values (brain score above chance); NaN where not finite.
    """
    out = np.full(data.shape[1], np.nan)
    for start in range(0, data.shape[1], voxel_chunk):
        sel = slice(start, start + voxel_chunk)
        out[sel] = bonferroni_folds(
            fold_pvalues_effective_dof(predictions[:, sel], data[:, sel], folds)
        )
    return out


def effective_dof_pvalues(
    predictions: np.ndarray,
    data: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-value of each voxel's brain score from Bartlett's variance of r, folds
    treated as independent (liberal: see the module docstring).

    Per fold, ``var(r) = (1/n) (1 + 2 sum_{tau=1..L} rho_p(tau) rho_y(tau))`` with the sample
    autocorrelations of prediction and data (``L`` = :data:`MAX_LAG_FRACTION` of the fold, the
    sum floored at 1/n); the brain score ``mean_k r_k`` is compared with a normal of variance
    ``sum_k var(r_k) / K^2``.

    Returns
    -------
    score, pvalue : ndarray, shape (n_voxels,)
    """
    from scipy import stats

    n_voxels = data.shape[1]
    ok = np.all(np.isfinite(predictions), axis=0) & np.all(np.isfinite(data), axis=0)
    score = np.full(n_voxels, np.nan)
    pvalue = np.full(n_voxels, np.nan)
    total_r = np.zeros(int(ok.sum()))
    total_var = np.zeros(int(ok.sum()))
    cols = np.flatnonzero(ok)
    for _, test in folds:
        r, var = _r_and_variance(
            predictions[np.ix_(test, cols)], data[np.ix_(test, cols)], np.float64
        )
        total_r += r
        total_var += var
    k = len(folds)
    score[ok] = total_r / k
    pvalue[ok] = stats.norm.sf(score[ok] / np.sqrt(total_var / k**2))
    return score, pvalue
