"""Noise ceiling: how well the other participants' BOLD predicts a participant's (pure numpy).

As in the authors' analysis (Millet, Caucheteux et al. 2022), a participant's cleaned BOLD is
predicted, voxel by voxel, from the mean cleaned BOLD of the other participants who heard the same
stimuli, with a cross-validated linear regression on the same outer folds as the encoding model;
the ceiling is the Pearson r between prediction and held-out BOLD, averaged over folds.

With a single regressor per voxel, a ridge penalty only shrinks the slope: the held-out Pearson r
of the prediction ``a * x + b`` is ``sign(a) * corr(x_test, y_test)`` for every alpha, so the fit
is done in closed form (ordinary least squares, one slope and intercept per voxel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r (0 where either column is constant)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / den
    return np.where(den > 0, r, 0.0)


def crossval_ceiling(
    target: np.ndarray, others_mean: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Cross-validated prediction of ``target`` from ``others_mean``, voxel by voxel.

    Parameters
    ----------
    target : ndarray, shape (n_scans, n_voxels)
        The participant's cleaned BOLD.
    others_mean : ndarray, shape (n_scans, n_voxels)
        Mean cleaned BOLD of the other participants, on the same scans (same stimuli).
    folds : sequence of (train_idx, test_idx)
        Outer folds (:func:`bids_w2v.encoding.folds.make_folds`).

    Returns
    -------
    ndarray, shape (n_voxels,)
        Pearson r between held-out BOLD and its prediction, averaged over folds.
    """
    y = np.asarray(target, dtype=np.float64)
    x = np.asarray(others_mean, dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"target {y.shape} and predictor {x.shape} differ in shape")
    scores = []
    for train, test in folds:
        xt, yt = x[train], y[train]
        xc = xt - xt.mean(axis=0)
        var = (xc * xc).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(var > 0, (xc * (yt - yt.mean(axis=0))).sum(axis=0) / var, 0.0)
        intercept = yt.mean(axis=0) - slope * xt.mean(axis=0)
        prediction = slope * x[test] + intercept
        scores.append(_pearson(prediction, y[test]))
    return np.mean(scores, axis=0)


def normalised_scores(scores: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """Brain scores divided by the noise ceiling (NaN where the ceiling is <= 0 or undefined)."""
    scores = np.asarray(scores, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64)
    out = np.full(np.broadcast(scores, ceiling).shape, np.nan)
    ok = np.isfinite(ceiling) & (ceiling > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = scores / ceiling
    out[...] = np.where(ok, ratio, np.nan)
    return out
