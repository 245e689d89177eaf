"""Per-fold ridge algebra: the SVD basis of the training features, shrinkage, refit and Pearson r.

Everything here works on one outer training fold whose features are already standardised
(hence centred). The thin SVD is computed once per fold in float64 (from the eigendecomposition
of the smaller Gram matrix) and reused for every alpha, voxel chunk and the refit.

Notation: ``X = U diag(s) Vt`` is the thin SVD of the centred training features (rank ``r``
after dropping numerically-zero singular values), ``Z = U^T Y`` for centred targets ``Y``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends import Array, Ops

__all__ = [
    "RANK_TOL",
    "Basis",
    "mean0",
    "pearson_columns",
    "project",
    "refit_predict",
    "shrink_factors",
    "svd_basis",
]


@dataclass
class Basis:
    """Thin SVD ``X = U diag(s) Vt`` of a centred design, trimmed to its numerical rank."""

    U: Array  # (n, r) float64
    s: Array  # (r,) float64
    Vt: Array  # (r, p) float64


#: Relative eigenvalue threshold: directions with ``s**2 < RANK_TOL * s_max**2`` are dropped.
#: Their ridge weight ``s**2 / (s**2 + alpha)`` is negligible for any alpha in the grid.
RANK_TOL = 1e-12


def svd_basis(ops: Ops, X: Array) -> Basis:
    """Thin SVD of ``X`` (float64) through the eigendecomposition of ``X^T X`` or ``X X^T``.

    Like scikit-learn's default ``RidgeCV`` ("cov"/"gram" modes), the smaller of the two Gram
    matrices is diagonalised, which is cheaper than a LAPACK SVD. Directions with
    ``s**2 <= RANK_TOL * s_max**2`` (numerically null, e.g. the constant direction of centred
    data when ``n <= p``, or duplicated features) are dropped.
    """
    n, p = X.shape
    if p <= n:
        lam, V = ops.eigh(X.T @ X)
    else:
        lam, U = ops.eigh(X @ X.T)
    lam_max = max(float(lam.max()), 0.0)
    keep = lam > RANK_TOL * lam_max  # all False for an all-zero design: empty basis
    s = ops.sqrt(lam[keep])
    if p <= n:
        V = V[:, keep]
        U = (X @ V) / s[None, :]
        Vt = V.T
    else:
        U = U[:, keep]
        Vt = (X.T @ U / s[None, :]).T
    return Basis(U, s, Vt)


def project(ops: Ops, U: Array, Y: Array, width: int = 2048) -> Array:
    """``U^T Y`` computed in float64 (by blocks of columns) and rounded to the working dtype.

    Each entry is then within one rounding (relative) of the exact product, which keeps the
    bounds of the exact alpha search (:mod:`bids_w2v.encoding.prune`) tight.
    """
    out = ops.empty((U.shape[1], Y.shape[1]))
    for b0 in range(0, Y.shape[1], width):
        out[:, b0 : b0 + width] = ops.to_work(U.T @ ops.to_high(Y[:, b0 : b0 + width]))
    return out


def shrink_factors(ops: Ops, s: Array, alphas: Array) -> Array:
    """``s / (s**2 + alpha)`` for every alpha: (n_alphas, r), float64."""
    return s[None, :] / (s[None, :] ** 2 + alphas[:, None])


def mean0(ops: Ops, Y: Array) -> Array:
    """Column means accumulated in float64."""
    return Y.mean(0, dtype=ops.high)  # = to_high(Y).mean(0), without the float64 copy


def refit_predict(A: Array, F: Array, best: Array, Z: Array) -> Array:
    """Predictions ``A diag(F[best_j]) z_j`` for every voxel ``j`` with one matrix product.

    ``A = X_test V`` (n_test, r), ``F`` the shrink factors (n_alphas, r), ``best`` the chosen
    alpha index per voxel, ``Z = U^T Y_train`` (r, n_voxels).
    """
    return A @ (F[best].T * Z)


def pearson_columns(ops: Ops, pred: Array, target: Array) -> Array:
    """Pearson r per column in float64; 0 where either column is constant.

    A column is constant exactly when its centred float64 copy is zero (the mean of equal
    working-dtype values is exact in float64), i.e. when its sum of squares is 0.
    """
    p = ops.to_high(pred)
    y = ops.to_high(target)
    p = p - p.mean(0)  # (not in place: to_high returns float64 inputs themselves)
    y = y - y.mean(0)
    num = (p * y).sum(0)
    pp, yy = (p * p).sum(0), (y * y).sum(0)
    den = ops.sqrt(pp * yy)
    ok = (pp > 0) & (yy > 0) & (den > 0)
    return ops.where(ok, num / ops.where(ok, den, 1.0 + 0.0 * den), 0.0 * den)
