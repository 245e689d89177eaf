"""Inner alpha selection by contiguous K-fold on one outer training fold (himalaya's criterion).

Split from :mod:`bids_w2v.encoding.inner` (the leave-one-out selector); the same float64 SVD
basis per inner fold and cache-sized blocks of voxels (:func:`bids_w2v.encoding.inner.block_width`).
"""

from __future__ import annotations

import numpy as np

from .backends import Array, NumpyOps, Ops
from .basis import mean0, shrink_factors, svd_basis
from .folds import contiguous_folds
from .inner import block_width

#: Weight of ``log(alpha)`` added to the inner K-fold score (himalaya's tie-break).
TIE_BREAK = 1e-10


class KFoldSelector:
    """Alpha selection by contiguous K-fold inside the training set, as himalaya's ``RidgeCV``.

    Matches ``himalaya.ridge.RidgeCV(alphas, cv=KFold(k), fit_intercept=True)``: in each inner
    fold, X and Y are centred with the inner-training means, the score is the negative mean
    squared error over the inner test samples, averaged over inner folds, plus
    ``TIE_BREAK * log(alpha)`` (himalaya's tie-break towards larger alphas); the argmax wins.
    Predictions use ``P = (X_te V) diag(s/(s^2+a)) (U^T Y_tr)``, one ``n_te x r x v`` product
    per alpha and inner fold, and the squared error is accumulated as
    ``||y||^2 + sum P (P - 2y)``, accurate for the tiny differences between large alphas.
    """

    def __init__(self, ops: Ops, X: Array, alphas: Array, n_inner: int) -> None:
        self.ops = ops
        self.log_alphas = ops.log(alphas)
        self.folds = []
        for train, test in contiguous_folds(X.shape[0], n_inner):
            tr, te = ops.index(train), ops.index(test)
            mean = X[tr].mean(0)
            basis = svd_basis(ops, X[tr] - mean)
            A_high = (X[te] - mean) @ basis.Vt.T
            F_high = shrink_factors(ops, basis.s, alphas)
            A, F = ops.to_work(A_high), ops.to_work(F_high)
            ones = ops.to_work(ops.full((len(test),), 1.0, high=True))
            self.folds.append((tr, te, ops.to_work(basis.U), A, F, ones))

    def criterion(self, Y: Array, pool=None) -> Array:
        """Himalaya's score (higher is better), shape (n_alphas, n_voxels), float64.

        Cache-sized blocks of voxels (as :class:`LooSelector`), on ``pool`` if given.
        """
        ops = self.ops
        v = Y.shape[1]
        total = ops.full((self.log_alphas.shape[0], v), 0.0, high=True)
        step = block_width(ops, Y.shape[0], v)

        def block(b0: int) -> None:
            b1 = min(b0 + step, v)
            for fold in self.folds:
                total[:, b0:b1] += self._fold_mse(fold, Y[:, b0:b1])

        starts = range(0, v, step)
        list(map(block, starts) if pool is None else pool.map(block, starts))
        return -total / len(self.folds) + TIE_BREAK * self.log_alphas[:, None]

    def _fold_mse(self, fold: tuple, Y: Array) -> Array:
        """Mean squared error of every alpha on one inner test fold: (n_alphas, n_voxels)."""
        ops = self.ops
        B, Yte, base, A, F, ones = self._prepare(fold, Y)
        n_te = Yte.shape[0]
        Yte2 = Yte + Yte
        T = ops.empty(tuple(B.shape))
        P = ops.empty(tuple(Yte.shape))
        Q = ops.empty(tuple(Yte.shape))
        rows = []
        for a in range(F.shape[0]):
            ops.matmul(A, ops.mul(F[a][:, None], B, out=T), out=P)
            ops.sub(P, Yte2, out=Q)
            Q *= P
            rows.append((base + ops.to_high(ones @ Q)) / n_te)
        return _stack(ops, rows)

    def select(self, Y: Array, search: str = "exact", pool=None) -> np.ndarray:
        """Index of the best alpha per voxel (first one on ties, as himalaya's argmax).

        ``"exact"`` and ``"full"`` both evaluate every alpha here (no bounds yet for the inner
        K-fold criterion), so they are identical.
        """
        return self.ops.to_numpy(self.criterion(Y, pool).argmax(0))

    def _prepare(self, fold: tuple, Y: Array) -> tuple:
        """Per inner fold: ``B = U^T Y_tr``, centred ``Y_te``, ``||Y_te||^2``, as ``_fold_mse``."""
        ops = self.ops
        tr, te, U, A, F, ones = fold
        Ytr = Y[tr]
        mean = ops.to_work(mean0(ops, Ytr))
        Ytr -= mean
        B = U.T @ Ytr
        del Ytr
        Yte = Y[te] - mean
        return B, Yte, ops.sum0(Yte * Yte), A, F, ones


def _stack(ops: Ops, rows: list[Array]) -> Array:
    if isinstance(ops, NumpyOps):
        return np.stack(rows)
    return ops.torch.stack(rows)
