"""Inner alpha selection on one outer training fold by leave-one-out, per voxel (the inner
K-fold selector is in :mod:`bids_w2v.encoding.kfold`).

The selectors reuse the float64 SVD basis of the fold (:mod:`bids_w2v.encoding.basis`); the
products with the voxel data (the expensive part, ``O(n * r * n_voxels)`` per alpha) run in the
working dtype, on cache-sized blocks of voxels on CPUs. Notation as in
:mod:`bids_w2v.encoding.basis`: ``X = U diag(s) Vt``, ``Z = U^T Y``.
"""

from __future__ import annotations

import numpy as np

from .backends import Array, Ops
from .basis import Basis, matmul_blocks, weighted_sum
from .prune import STATS, abs_norm, loo_bounds, orthonormality, pick, plan
from .refine import Refiner


class LooSelector:
    """Efficient leave-one-out alpha selection, as ``sklearn.linear_model.RidgeCV``.

    With an unpenalised intercept and centred ``X``, the hat matrix is
    ``H = 11^T/n + U diag(g) U^T`` with ``g = s^2/(s^2+a)``, and the LOO residual of sample
    ``i`` is ``e_i = c_i (y_i - P_i)`` with ``P = U diag(g) Z`` and ``c_i = 1 / (1 - H_ii)``.
    The criterion is the mean squared LOO error per voxel (ties go to the first alpha, like
    scikit-learn). Numerics:

    * ``1 - H_ii = q_i + sum_k U_ik^2 a/(s_k^2+a)`` with ``q_i = 1 - 1/n - ||U_i||^2 >= 0``
      (accurate also when ``H_ii`` is close to 1); leverages are float64.
    * Each alpha costs one ``(n, r) x (r, v)`` product in the working dtype, two
      element-wise passes and one ``c^2``-weighted column sum (matrix-vector product), on
      small blocks of voxels (:func:`plan_width`) that stay in cache; the product and the
      sum run by blocks (:func:`~bids_w2v.encoding.basis.matmul_blocks`,
      :func:`~bids_w2v.encoding.basis.weighted_sum`), which makes their rounding bounds, and
      so the bounds of the exact search, several times tighter. Per voxel and alpha,
      when the fit is small (``||P|| <= ||U diag(1-g) z||``: large alphas, where
      neighbouring alphas differ by ~1e-8 in relative error), the error is expanded as
      ``sum c^2 y^2 + sum c^2 P (P - 2y)``: the first term in float64, the second small and
      accurate in float32; otherwise the residual ``y - P`` is squared directly.
    * ``Z = U^T Y`` is computed in the working dtype (:func:`bids_w2v.encoding.basis.project`),
      and the criterion is that of the computed ``Z`` (``P = U diag(g) Z``); which alphas are
      evaluated is decided by :mod:`bids_w2v.encoding.prune` (first stage) and
      :mod:`bids_w2v.encoding.refine` (second stage).
    """

    def __init__(self, ops: Ops, basis: Basis, alphas: Array) -> None:
        self.ops = ops
        U, s = basis.U, basis.s
        n = U.shape[0]
        U2 = U**2
        q = 1.0 - 1.0 / n - U2.sum(1)
        q = ops.where(q > 0, q, 0.0 * q)
        gc = alphas[:, None] / (s[None, :] ** 2 + alphas[:, None])  # (n_alphas, r)
        inv_1mh = 1.0 / (q[None, :] + gc @ U2.T)  # (n_alphas, n)
        self.g_high = 1.0 - gc
        self.gc_high = gc
        self.c2_high = inv_1mh**2
        self.g = ops.to_work(self.g_high)
        self.gT = ops.to_work(self.g_high.T + 0.0)  # (r, n_alphas), a copy: columns g_a for _pairs
        self.gc = ops.to_work(gc)
        self.c2 = ops.to_work(self.c2_high)
        self.U = ops.to_work(U)
        self.U_high = U
        self.refiner = None  # second-stage bounds, made on the first select
        self.abs_norm = abs_norm(ops, U)  # bound on || |U| x || for the bounds' rounding
        self.orth = orthonormality(ops, U)  # bound on ||U^T U - I||_2
        self.s = s
        self.alphas = alphas
        self.n, self.r = n, int(U.shape[1])

    def select(
        self, Yc: Array, Z: Array, search: str = "exact", pool=None, keep_yc: bool = True
    ) -> np.ndarray:
        """Index of the best alpha per voxel (first one on ties, as scikit-learn).

        ``search="full"`` evaluates every alpha; ``"exact"`` only the alphas that can still win,
        in two stages per block of voxels (:func:`bids_w2v.encoding.prune.plan`): first one
        alpha per voxel (:func:`bids_w2v.encoding.prune.pick`: the candidate of
        :func:`bids_w2v.encoding.prune.loo_bounds` with the smallest midpoint of its bounds;
        none for a voxel with one candidate, which is then the choice),
        then the candidates that the second-stage bounds from its residual
        (:mod:`bids_w2v.encoding.refine`) cannot exclude. ``"full"`` runs the same two stages
        with the same products, then evaluates the other columns with further products, so each
        value that ``"exact"`` computes is computed identically in ``"full"`` and the other
        values cannot be its minimum: the same choice, by construction.
        The blocks run on ``pool`` (a :class:`bids_w2v.encoding.parallel.UnitPool`) if given.
        The columns of ``Yc`` and ``Z`` are permuted in place into the blocks' order during the
        call (:func:`permute_columns`) and restored before it returns (``Z`` only, with
        ``keep_yc=False``: ``Yc`` is then left in an unspecified column order).
        """
        if self.refiner is None:
            self.refiner = Refiner(self)
        width = plan_width(self.ops, Yc.shape[0], Yc.shape[1])
        lo, hi, split, det = loo_bounds(self, Yc, Z, width, pool=pool, detail=True)
        best = np.zeros(Yc.shape[1], dtype=np.int64)
        full = search != "exact"
        first = pick(lo, hi)
        blocks = list(plan(lo, hi, split, width, prune=True, count=False, key=first))
        # the voxels in plan order, so that each block is a slice (a block of columns gathered
        # from the whole chunk reads a cache line per element); restored afterwards
        order = np.concatenate([item[0] for item in blocks] or [np.zeros(0, np.int64)])
        split, first = split[order], first[order]
        det = {key: np.take(val, order, axis=-1) for key, val in det.items()}
        starts = np.cumsum([0] + [item[0].size for item in blocks])

        def block(i: int) -> int:
            b = slice(starts[i], starts[i + 1])
            cand = blocks[i][2]
            values, used = self.two_stage(
                Yc[:, b], Z[:, b], split[b], cand, first[b],
                {key: val[..., b] for key, val in det.items()},
                rest=full,
            )  # fmt: skip
            choice = values.argmin(0)
            if not full:  # a voxel with one candidate: that alpha, not evaluated
                one = cand.sum(0) == 1
                choice[one] = first[b][one]
            best[blocks[i][0]] = choice
            return used

        permute_columns(self.ops, (Yc, Z), order, pool)
        try:
            items = range(len(blocks))
            used = list(map(block, items) if pool is None else pool.map(block, items))
        finally:
            permute_columns(self.ops, (Yc, Z) if keep_yc else (Z,), np.argsort(order), pool)
        STATS["evaluated"] += sum(used)
        STATS["total"] += lo.size
        return best

    def two_stage(self, Yc, Z, split, cand, first, det, rest: bool = False) -> tuple:
        """Values (n_alphas, k) of a block of :meth:`select` and the number evaluated.

        Stage 1 evaluates one candidate alpha per voxel (``first``) unless it is the voxel's
        only candidate (the first-stage bounds then decide: that alpha is the full grid's
        choice), stage 2 the candidates whose second-stage lower bound minus the full grid's
        rounding ``err`` does not exceed the value of stage 1 (every candidate where that value
        is not finite; all of the block's pairs in one product, :meth:`_pairs`); with ``rest``,
        every other column too. Entries not evaluated are +inf.
        """
        ops = self.ops
        k = Yc.shape[1]
        n_alphas = self.g.shape[0]
        every = np.arange(k)
        out = np.full((n_alphas, k), np.inf)
        several = cand.sum(0) > 1  # (a voxel with one candidate has nothing to compare)
        if not (rest or several.any()):
            return out, 0
        S1 = det["S1"]  # sum c^2 y^2 for every alpha, float64 (from the bounds)
        # 2y for the small-fit formula: only the columns with split < n_alphas (a prefix, as
        # the block is sorted by split) ever use it
        m = int(np.searchsorted(split, n_alphas - 1, side="right"))
        Y2 = Yc[:, :m] + Yc[:, :m]
        n, r = self.n, self.r
        bufs = (ops.empty((r * k,)), ops.empty((n * k,)), ops.empty((n * k,)))  # T, P, Q
        half = (n_alphas, k)
        ta, dw, wn2 = np.zeros(half), np.zeros(half), np.zeros(k)
        for a in np.unique(first[several]):
            cols = np.flatnonzero((first == a) & several)
            out[a, cols], st = self._columns(Yc, Y2, Z, split, a, cols, S1[a], bufs, True)
            ta[:, cols], dw[:, cols], wn2[cols] = st
        z2, az = ops.to_numpy(ops.square_high(Z)), ops.to_numpy(abs(Z))
        lo2 = self.refiner.lower(
            z2, az, first, ta, dw, wn2, det["dP"][first, every], det["e"]
        )  # fmt: skip
        fstar = out[first, every]
        second = second_stage(cand, lo2 - det["err"], fstar, first)
        done = second.copy()
        done[first[several], every[several]] = True
        pa, pc = np.nonzero(second)  # the second stage's (alpha, voxel) pairs, by alpha
        if pa.size:
            out[pa, pc] = self._pairs(Yc, Y2, Z, split, pa, pc, S1, bufs)
        if rest:
            for a in range(n_alphas):
                cols = np.flatnonzero(~done[a])
                if cols.size:
                    out[a, cols] = self._columns(Yc, Y2, Z, split, a, cols, S1[a], bufs)
            return out, out.size
        return out, int(done.sum())

    def values(
        self,
        Yc: Array,
        Z: Array,
        split: np.ndarray,
        alphas: np.ndarray,
        cand: np.ndarray | None = None,
        rest: bool = False,
    ) -> np.ndarray:
        """Sum of squared LOO errors of ``alphas`` for a block of voxels (float64, numpy).

        Voxels must be sorted by ``split``: alpha ``a`` uses the small-fit expansion
        ``sum c^2 y^2 + sum c^2 P (P - 2y)`` (first term in float64) for the voxels with
        ``split <= a``, and the residual ``sum c^2 (y - P)^2`` for the others, where
        ``P = U diag(g) z`` is one ``(n, r) @ (r, columns)`` product per alpha. With ``cand``
        (an (n_alphas, block) mask), alpha ``a`` is evaluated on the columns ``cand[a]`` with
        one product on those columns, then (``rest``) on the others with a second one; the
        values a column gets do not depend on ``rest``. Entries not evaluated are +inf.
        """
        ops = self.ops
        b = Yc.shape[1]
        out = np.full((self.g.shape[0], b), np.inf)
        if not alphas.size:
            return out
        # every alpha's row, whichever are evaluated: the float64 product's rounding must not
        # depend on the set of alphas (exact and full evaluate different sets)
        S1 = ops.to_numpy(weighted_sumsq(ops, self.c2_high, Yc))
        Y2 = Yc + Yc
        every = np.arange(b)
        n, r = self.n, self.r
        bufs = (ops.empty((r * b,)), ops.empty((n * b,)), ops.empty((n * b,)))  # T, P, Q
        for a in alphas:
            mask = None if cand is None else cand[a]
            groups = [every] if mask is None else [np.flatnonzero(mask)]
            if rest and mask is not None:
                groups.append(np.flatnonzero(~mask))
            for cols in groups:
                if cols.size:
                    out[a, cols] = self._columns(Yc, Y2, Z, split, a, cols, S1[a], bufs)
        return out

    def _columns(self, Yc, Y2, Z, split, a: int, cols: np.ndarray, S1, bufs, stats=False):
        """Values of alpha ``a`` on the columns ``cols`` (ascending) of a block: one product.

        ``bufs``: flat work arrays of at least ``r``, ``n`` and ``n`` times the block width.
        With ``stats``, also :meth:`bids_w2v.encoding.refine.Refiner.stats` of the computed
        residuals ``P - y``.
        """
        ops = self.ops
        k = cols.size
        j = int(np.searchsorted(split[cols], a, side="right"))  # small-fit columns: [0, j)
        if k < Yc.shape[1]:  # gather what the two formulas need; else the block, as it is
            Z = ops.columns(Z, ops.index(cols))
            Y2 = ops.columns(Y2, ops.index(cols[:j]))
            Yc = ops.columns(Yc, ops.index(cols if stats else cols[j:]))
        else:
            Y2 = Y2[:, :j]
        rows = (self.r, self.n, self.n)
        T, P, Q = (buf[: m * k].reshape(m, k) for buf, m in zip(bufs, rows, strict=True))
        matmul_blocks(ops, self.U, ops.mul(self.g[a][:, None], Z, out=T), P, Q)
        if stats:  # the residuals P - y (in P, after the small-fit terms) serve both: the same
            # terms as terms(), the squares of the residual columns taken from them
            terms(ops, P[:, :j], Q[:, :j], j, Y2, None)
            W = ops.sub(P, Yc, out=P)
            ops.mul(W[:, j:], W[:, j:], out=Q[:, j:])
        else:
            terms(ops, P, Q, j, Y2, Yc[:, -(k - j) :] if j < k else None)
        val = weighted_sum(ops, self.c2[a], Q)
        val[:j] += S1[cols[:j]]
        if not stats:
            return val
        return val, self.refiner.stats(W)

    def _pairs(self, Yc, Y2, Z, split, pa, pc, S1, bufs) -> np.ndarray:
        """Values of the (alpha, column) pairs ``(pa, pc)`` (sorted by alpha) of a block, with
        one product ``U @ [g_a z_j]`` per block width of pairs instead of one per alpha (a
        product with few columns spends most of its time packing ``U``); each pair as in
        :meth:`_columns` (small-fit formula where ``split <= a``), the small-fit pairs first.
        """
        ops = self.ops
        small = split[pc] <= pa
        order = np.argsort(~small, kind="stable")  # small-fit pairs first, each part by alpha
        pa, pc, small = pa[order], pc[order], small[order]
        out = np.empty(pa.size)
        width = bufs[1].shape[0] // self.n
        for m0 in range(0, pa.size, width):
            a, c = pa[m0 : m0 + width], pc[m0 : m0 + width]
            m, j = a.size, int(small[m0 : m0 + width].sum())
            T, P, Q = (
                buf[: h * m].reshape(h, m)
                for buf, h in zip(bufs, (self.r, self.n, self.n), strict=True)
            )
            ops.mul(ops.columns(self.gT, ops.index(a)), ops.columns(Z, ops.index(c)), out=T)
            matmul_blocks(ops, self.U, T, P, Q)
            y2 = ops.columns(Y2, ops.index(c[:j])) if j else None
            terms(ops, P, Q, j, y2, ops.columns(Yc, ops.index(c[j:])) if j < m else None)
            val = np.empty(m)
            cuts = np.flatnonzero((a[1:] != a[:-1]) | (np.arange(1, m) == j)) + 1
            for b0, b1 in zip(np.r_[0, cuts], np.r_[cuts, m], strict=True):
                val[b0:b1] = weighted_sum(ops, self.c2[a[b0]], Q[:, b0:b1])
            val[:j] += S1[a[:j], c[:j]]
            out[m0 : m0 + m] = val
        res = np.empty_like(out)
        res[order] = out
        return res


def second_stage(
    cand: np.ndarray, bound: np.ndarray, fstar: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """The (alpha, voxel) pairs of the second stage of :meth:`LooSelector.two_stage`: the
    candidates whose ``bound`` (second-stage lower bound minus the full grid's rounding) does
    not exceed ``fstar``, the value of the alpha ``first`` evaluated in stage 1 (every candidate
    where that value is not finite), without ``first`` itself."""
    every = np.arange(cand.shape[1])
    second = cand & ((bound <= fstar[None, :]) | ~np.isfinite(fstar)[None, :])
    second[first, every] = False
    return second


def terms(ops: Ops, P: Array, Q: Array, j: int, Y2: Array | None, Y: Array | None) -> None:
    """The criterion's per-sample terms into ``Q``: ``P (P - 2y)`` for the first ``j`` columns
    (small-fit formula, ``Y2 = 2y`` of those columns), ``(P - y)^2`` for the others (``Y``)."""
    if j:
        ops.sub(P[:, :j], Y2, out=Q[:, :j])
        Q[:, :j] *= P[:, :j]
    if j < P.shape[1]:
        ops.sub(P[:, j:], Y, out=Q[:, j:])
        Q[:, j:] *= Q[:, j:]


def permute_columns(ops: Ops, arrays: tuple, order: np.ndarray, pool=None, rows: int = 64) -> None:
    """``A[:] = A[:, order]`` for each array, in place, by slabs of ``rows`` rows (on ``pool``)."""
    idx = ops.index(order)
    slabs = [(A, slice(r0, r0 + rows)) for A in arrays for r0 in range(0, A.shape[0], rows)]

    def slab(item: tuple) -> None:
        A, part = item
        A[part] = ops.columns(A[part], idx)

    list(map(slab, slabs) if pool is None else pool.map(slab, slabs))


def weighted_sumsq(ops: Ops, W: Array, Y: Array, block: int = 256, rows=None) -> Array:
    """``W @ (Y**2)`` in float64, by blocks of rows of ``Y`` to bound memory.

    With ``rows`` (a boolean mask over the rows of ``out``), returns an array with the rows of
    ``out`` selected by ``rows`` set to ``W @ (Y**2)`` and the others 0.
    """
    out = None
    for start in range(0, Y.shape[0], block):
        part = W[:, start : start + block] @ ops.square_high(Y[start : start + block])
        out = part if out is None else out + part
    if rows is None:
        return out
    full = ops.full((len(rows), Y.shape[1]), 0.0, high=True)
    full[ops.index(np.flatnonzero(rows))] = out
    return full


#: Target size in bytes of one ``(n, block)`` working-dtype array of the voxel loops.
BLOCK_BYTES = 8 * 2**20


def block_width(ops: Ops, n: int, v: int) -> int:
    """Voxels per block: an ``(n, block)`` array takes about :data:`BLOCK_BYTES` on CPUs.

    On GPUs the whole chunk is one block (``voxel_chunk`` bounds the memory there).
    """
    if not ops.cpu:
        return max(v, 1)
    width = max(256, BLOCK_BYTES // (ops.itemsize * max(n, 1)))
    return int(min(v, width)) if v else 1


#: Voxels per block of the alpha search on CPUs and GPUs: blocks of similar voxels let the exact
#: search skip alphas, and products of this width still run near the peak rate.
PLAN_BLOCK = {"cpu": 256, "gpu": 8192}


def plan_width(ops: Ops, n: int, v: int) -> int:
    """Voxels per block of :meth:`LooSelector.select`: :data:`PLAN_BLOCK`, at most cache-sized."""
    if not ops.cpu:
        return max(1, min(v, PLAN_BLOCK["gpu"]))
    return max(1, min(PLAN_BLOCK["cpu"], block_width(ops, n, v)))
