"""Per-fold ridge algebra: the SVD basis of the training features, shrinkage, refit and Pearson r.

Everything here works on one outer training fold whose features are already standardised
(hence centred). The thin SVD is computed once per fold in float64 (from the eigendecomposition
of the smaller Gram matrix) and reused for every alpha, voxel chunk and the refit.

Notation: ``X = U diag(s) Vt`` is the thin SVD of the centred training features (rank ``r``
after dropping numerically-zero singular values), ``Z = U^T Y`` for centred targets ``Y``
(computed in the working dtype, :func:`project`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import Array, Ops

__all__ = [
    "EVAL_COLS",
    "PROJECT_ROWS",
    "RANK_TOL",
    "SUM_ROWS",
    "Basis",
    "block_depth",
    "matmul_blocks",
    "matmul_depth",
    "mean0",
    "pearson_columns",
    "project",
    "project_depth",
    "refit_predict",
    "shrink_factors",
    "sum_depth",
    "svd_basis",
    "weighted_sum",
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


#: Rows per block of :func:`project`: each block's product sums at most this many terms in the
#: working dtype, which bounds the rounding of ``Z`` (:func:`project_depth`); blocks of 200 rows
#: run at the rate of one product (measured in ``benchmarks/README.md``).
PROJECT_ROWS = 200


def project(ops: Ops, U: Array, Y: Array, rows: int = PROJECT_ROWS) -> Array:
    """``U^T Y`` in the working dtype, summed over blocks of ``rows`` rows of ``U`` and ``Y``.

    ``U`` (float64 or already in the working dtype) is rounded to the working dtype. Each entry
    ``z_kj`` is within ``gamma_{project_depth(n) + 3} ||U_k|| ||y_j||`` of the exact
    ``(U^T y_j)_k`` (:func:`project_depth`): the bound the exact alpha search uses
    (:mod:`bids_w2v.encoding.prune`).
    """
    Uw = ops.to_work(U)
    out = Uw[:rows].T @ Y[:rows]
    for r0 in range(rows, U.shape[0], rows):
        out += Uw[r0 : r0 + rows].T @ Y[r0 : r0 + rows]
    return out


def block_depth(n: int, block: int) -> int:
    """Roundings on the longest path of an entry of a sum of ``n`` terms computed as working-
    dtype sums (one BLAS call each, any order) of at most ``block`` terms, then the sum of
    those blocks: the ``k`` of the error factor ``gamma_k`` (standard model)."""
    return min(n, block) + max(-(-n // block), 1)


def project_depth(n: int, rows: int = PROJECT_ROWS) -> int:
    """:func:`block_depth` of :func:`project` over ``n`` rows. With ``U`` rounded to the
    working dtype (one more rounding) and ``|U_k|^T |y| <= ||U_k|| ||y||``, each entry of
    ``Z`` is within ``gamma_{project_depth(n) + 3} ||U_k|| ||y||`` of ``(U^T y)_k``."""
    return block_depth(n, rows)


#: Columns of ``U`` per block of :func:`matmul_blocks` and rows per block of
#: :func:`weighted_sum`: the rounding bounds of the criterion's products and sums grow with the
#: terms one BLAS call sums (:func:`matmul_depth`, :func:`sum_depth`), and blocks of this size
#: run at about the rate of one call (measured in ``benchmarks/README.md``).
EVAL_COLS, SUM_ROWS = 256, 200


def matmul_blocks(ops: Ops, U: Array, T: Array, out: Array, tmp: Array, cols: int = EVAL_COLS):
    """``out = U @ T`` as a sum of products over blocks of ``cols`` columns of ``U`` (rows of
    ``T``) accumulated in ``out`` (``tmp``: a work array shaped like ``out``)."""
    ops.matmul(U[:, :cols], T[:cols], out=out)
    for c0 in range(cols, U.shape[1], cols):
        ops.matmul(U[:, c0 : c0 + cols], T[c0 : c0 + cols], out=tmp)
        out += tmp
    return out


def matmul_depth(r: int, cols: int = EVAL_COLS) -> int:
    """:func:`block_depth` of an entry of :func:`matmul_blocks` with ``r`` columns of ``U``."""
    return block_depth(r, cols)


def weighted_sum(ops: Ops, w: Array, Q: Array, rows: int = SUM_ROWS) -> np.ndarray:
    """``w @ Q`` as a float64 numpy vector: working-dtype products over blocks of ``rows`` rows
    of ``Q``, summed in float64."""
    total = ops.to_high(w[:rows] @ Q[:rows])
    for r0 in range(rows, Q.shape[0], rows):
        total = total + ops.to_high(w[r0 : r0 + rows] @ Q[r0 : r0 + rows])
    return ops.to_numpy(total)


def sum_depth(n: int, rows: int = SUM_ROWS) -> int:
    """:func:`block_depth` of :func:`weighted_sum` over ``n`` rows."""
    return block_depth(n, rows)


def shrink_factors(ops: Ops, s: Array, alphas: Array) -> Array:
    """``s / (s**2 + alpha)`` for every alpha: (n_alphas, r), float64."""
    return s[None, :] / (s[None, :] ** 2 + alphas[:, None])


def mean0(ops: Ops, Y: Array) -> Array:
    """Column means accumulated in float64."""
    return Y.mean(0, dtype=ops.high)  # = to_high(Y).mean(0), without the float64 copy


def refit_predict(ops: Ops, A: Array, F: Array, best: Array, Z: Array) -> Array:
    """Predictions ``A diag(F[best_j]) z_j`` for every voxel ``j`` with one matrix product.

    ``A = X_test V`` (n_test, r), ``F`` the shrink factors (n_alphas, r), ``best`` the chosen
    alpha index per voxel, ``Z = U^T Y_train`` (r, n_voxels). The factors are gathered as
    columns of ``F^T`` (contiguous writes) and scaled in place: the same products as
    ``F[best].T * Z``, without its transposed pass.
    """
    W = ops.columns(F.T, best)
    return A @ ops.mul(W, Z, out=W)


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
