"""One outer fold of :func:`bids_w2v.encoding.cross_validated_scores`: the fit of a voxel chunk.

:class:`OuterFold` holds what a fold shares between its voxels (SVD basis, inner selector,
test-set design, shrink factors) and fits a chunk of voxels with the per-voxel steps on the
units of :mod:`bids_w2v.encoding.parallel`: centring and ``Z = U^T Y`` (:func:`project`) per
unit, the inner alpha selection (whose blocks run on the same pool), then the refit and
Pearson r per unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .basis import mean0, pearson_columns, project, refit_predict
from .inner import LooSelector
from .kfold import KFoldSelector
from .parallel import UnitPool, units


@dataclass
class OuterFold:
    """What one outer fold shares between its voxels (see :meth:`fit`)."""

    ops: Any
    selector: LooSelector | KFoldSelector
    U: Any  # (n_train, r), working dtype
    A: Any  # X_test V, (n_test, r), working dtype
    F: Any  # shrink factors, (n_alphas, r), working dtype
    train: Any
    test: Any
    search: str
    runs: tuple[slice, ...] = ()  # the training rows as runs of consecutive rows (:func:`runs`)

    def fit(self, Ych: Any, pool: UnitPool) -> tuple[Any, np.ndarray, Any, Any]:
        """Pearson r, chosen alpha indices, centred test predictions and training means of a
        chunk of voxels ``Ych`` (all samples); the per-voxel steps run on ``pool``'s units."""
        ops = self.ops
        v = Ych.shape[1]
        n_tr, n_te = self.train.shape[0], self.test.shape[0]
        Yc, Yte, Z = ops.empty((n_tr, v)), ops.empty((n_te, v)), ops.empty((self.U.shape[1], v))
        mean = ops.empty((v,))
        parts = units(ops, v)

        def prepare(part: slice) -> None:
            y = Ych[:, part]
            # centred training data (the intercept), straight from the runs of training rows
            # (no gathered copy); a constant voxel becomes exactly 0, as the float64 mean of
            # equal working-dtype values is exact
            if self.runs:
                total = y[self.runs[0]].sum(0, dtype=ops.high)
                for rows in self.runs[1:]:
                    total += y[rows].sum(0, dtype=ops.high)
                m = ops.to_work(total / n_tr)
                start = 0
                for rows in self.runs:
                    stop = start + rows.stop - rows.start
                    ops.sub(y[rows], m, out=Yc[start:stop, part])
                    start = stop
            else:
                yc = y[self.train]
                m = ops.to_work(mean0(ops, yc))
                ops.sub(yc, m, out=Yc[:, part])
            Yte[:, part], mean[part] = y[self.test], m
            Z[:, part] = project(ops, self.U, Yc[:, part])

        list(pool.map(prepare, parts))
        # (the K-fold selector re-centres each inner fold, so Yc is as good as Y there)
        if isinstance(self.selector, LooSelector):
            # (Yc is not used after the selection: its columns need not be put back)
            best_np = self.selector.select(Yc, Z, search=self.search, pool=pool, keep_yc=False)
        else:
            best_np = self.selector.select(Yc, search=self.search, pool=pool)
        best = ops.index(best_np)
        pred, r = ops.empty((n_te, v)), ops.full((v,), 0.0, high=True)

        def finish(part: slice) -> None:
            # r is shift invariant: correlate the centred prediction, so that the tiny
            # variations of heavily regularised voxels are not rounded away by the mean.
            pred[:, part] = refit_predict(ops, self.A, self.F, best[part], Z[:, part])
            r[part] = pearson_columns(ops, pred[:, part], Yte[:, part])

        list(pool.map(finish, parts))
        return r, best_np, pred, mean


def runs(idx: np.ndarray) -> tuple[slice, ...]:
    """Sorted row indices as slices of consecutive rows (a fold's training rows: one or two
    runs, more with gaps); ``()`` if ``idx`` is not increasing."""
    idx = np.asarray(idx)
    if idx.size == 0 or np.any(np.diff(idx) <= 0):
        return ()
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [idx.size]])
    pairs = zip(starts, stops, strict=True)
    return tuple(slice(int(idx[a]), int(idx[b - 1]) + 1) for a, b in pairs)
