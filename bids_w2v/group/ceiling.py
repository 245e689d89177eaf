"""Noise ceiling: how well the other participants' BOLD predicts a participant's (numpy/scipy).

Two methods, named by ``--noise-ceiling-method``:

``paper`` (:func:`paper_ceiling`, the default)
    The authors' code (JAMJU/brain_and_models, ``compute_noise_ceiling.py``; Millet,
    Caucheteux et al. 2022): PCA with 100 components of the participant's cleaned BOLD and of
    the mean cleaned BOLD of the others (each fitted on all scans), a multivariate ridge with
    scikit-learn ``RidgeCV()``'s defaults (alphas 0.1, 1, 10, one alpha for all components
    chosen by efficient leave-one-out error, unpenalised intercept) from the others' components
    to the participant's, cross-validated predictions over ``KFold(10)`` unshuffled
    (``cross_val_predict``), mapped back through the inverse PCA, and the Pearson r per voxel
    between the whole predicted and observed series. The paper's normalised scores ("19 % of
    the ceiling on average") are relative to this ceiling.

``voxelwise`` (:func:`crossval_ceiling`, bids-w2v's earlier method; not the paper's)
    Each voxel predicted from the same voxel of the mean of the others by least squares on the
    encoding model's outer folds; the Pearson r on each held-out fold, averaged over folds.
    With a single regressor per voxel a ridge penalty only shrinks the slope (the held-out
    Pearson r of ``a * x + b`` is ``sign(a) * corr(x_test, y_test)`` for every alpha), so the
    fit is done in closed form.
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


#: scikit-learn ``RidgeCV()``'s default alphas, used by the authors' noise ceiling
PAPER_ALPHAS = (0.1, 1.0, 10.0)
#: PCA components of the authors' noise ceiling
PAPER_COMPONENTS = 100
#: unshuffled folds of the authors' noise ceiling (``KFold(10)``)
PAPER_FOLDS = 10
CEILING_METHODS = ("paper", "voxelwise")


def pca_fit_transform(
    data: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact PCA (as scikit-learn's ``PCA(svd_solver="full")``): scores, components, mean.

    Parameters
    ----------
    data : ndarray, shape (n_samples, n_features)
    n_components : int
        At most ``min(n_samples, n_features)``.

    Returns
    -------
    scores : ndarray, shape (n_samples, n_components)
    components : ndarray, shape (n_components, n_features)
    mean : ndarray, shape (n_features,)
    """
    mean = data.mean(axis=0)
    centred = data - mean
    n, p = centred.shape
    if p > n:  # many voxels: eigen-decompose the scans' Gram matrix (n x n), not the data
        gram = centred @ centred.T
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1][:n_components]
        sing = np.sqrt(np.clip(evals[order], 0.0, None))
        u = evecs[:, order]
        with np.errstate(invalid="ignore", divide="ignore"):
            components = np.where(sing[:, None] > 0, (u.T @ centred) / sing[:, None], 0.0)
        scores = u * sing
    else:
        u, sing, vt = np.linalg.svd(centred, full_matrices=False)
        scores, components = u[:, :n_components] * sing[:n_components], vt[:n_components]
    return scores, components, mean


def ridge_loo_fit(
    x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = PAPER_ALPHAS
) -> tuple[np.ndarray, np.ndarray, float]:
    """Multivariate ridge with one alpha chosen by leave-one-out error, as ``RidgeCV()``.

    The intercept is not penalised; the alpha minimising the mean squared leave-one-out error
    over all samples and targets is kept (the first one on ties), and the ridge refitted with it.

    Returns
    -------
    coef : ndarray, shape (n_features, n_targets)
    intercept : ndarray, shape (n_targets,)
    alpha : float
    """
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    n = len(xc)
    u, sing, vt = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    best, best_err = None, np.inf
    for alpha in alphas:
        shrink = sing**2 / (sing**2 + alpha)
        fitted = u @ (shrink[:, None] * uty)  # hat matrix applied to centred y
        hat_diag = 1.0 / n + (u * u) @ shrink
        loo = (yc - fitted) / (1.0 - hat_diag)[:, None]
        err = float(np.mean(loo**2))
        if err < best_err:
            best, best_err = float(alpha), err
    coef = vt.T @ ((sing / (sing**2 + best))[:, None] * uty)
    return coef, y_mean - x_mean @ coef, best


def kfold_unshuffled(n_samples: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous folds as scikit-learn's ``KFold(n_folds, shuffle=False)``: the first
    ``n_samples % n_folds`` folds have one more sample."""
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    stops = np.cumsum(sizes)
    index = np.arange(n_samples)
    return [
        (np.concatenate([index[: stop - size], index[stop:]]), index[stop - size : stop])
        for size, stop in zip(sizes, stops, strict=True)
    ]


def paper_ceiling(
    target: np.ndarray,
    others_mean: np.ndarray,
    *,
    n_components: int = PAPER_COMPONENTS,
    n_folds: int = PAPER_FOLDS,
    alphas: Sequence[float] = PAPER_ALPHAS,
) -> np.ndarray:
    """The authors' noise ceiling (module docstring, ``paper``).

    Parameters
    ----------
    target : ndarray, shape (n_scans, n_voxels)
        The participant's cleaned BOLD.
    others_mean : ndarray, shape (n_scans, n_voxels)
        Mean cleaned BOLD of the other participants, on the same scans.
    n_components : int
        PCA components (clipped to ``min(n_scans, n_voxels)``).
    n_folds : int
        Unshuffled folds of ``cross_val_predict``.
    alphas : sequence of float
        Ridge penalties searched by leave-one-out error within each training set.

    Returns
    -------
    ndarray, shape (n_voxels,)
        Pearson r per voxel between the whole observed series and its cross-validated
        prediction (0 where either is constant).
    """
    y = np.asarray(target, dtype=np.float64)
    x = np.asarray(others_mean, dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"target {y.shape} and predictor {x.shape} differ in shape")
    if len(y) < n_folds:
        raise ValueError(f"{len(y)} scans cannot be split into {n_folds} folds")
    k = min(n_components, *y.shape)
    y_scores, y_components, y_mean = pca_fit_transform(y, k)
    x_scores = pca_fit_transform(x, k)[0]
    predicted = np.empty_like(y_scores)
    for train, test in kfold_unshuffled(len(y), n_folds):
        coef, intercept, _ = ridge_loo_fit(x_scores[train], y_scores[train], alphas)
        predicted[test] = x_scores[test] @ coef + intercept
    return _pearson(predicted @ y_components + y_mean, y)


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
