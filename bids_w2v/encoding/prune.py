"""Exact alpha search by pruning: bounds on every alpha's criterion, exact values where needed.

The default ``alpha_search="exact"`` returns, for every (fold, voxel), the alpha that
``alpha_search="full"`` returns (the first minimiser of the same computed criterion), by
construction:

1. For every alpha and voxel, cheap float64 bounds ``lo <= F <= hi`` on the criterion value
   ``F`` that the full grid computes (in the working dtype) are formed from ``Z = U^T Y`` in
   ``O(n_alphas * (r + n))`` per voxel (:func:`loo_bounds`; the inner K-fold criterion has
   no bounds yet and evaluates every alpha): bounds on the exact criterion of the computed
   ``Z`` (whose own rounding, bounded by :func:`~bids_w2v.encoding.basis.project_depth`,
   enters through ``U^T y``), widened by a
   bound on the rounding error of the full grid's arithmetic (standard model,
   ``|fl(x op y) - x op y| <= u |x op y|``, worst-case accumulation ``gamma_k = 2 k u`` for
   sums of ``k`` terms, i.e. twice the classical ``k u / (1 - k u)``).
2. An alpha is a candidate of a voxel when its ``lo`` does not exceed the smallest ``hi`` of
   the voxel. Any other alpha has ``F > min_b hi_b >= F_b`` for some candidate ``b``, so it is
   neither the minimum nor tied with it: the first minimiser is a candidate. A voxel with
   one candidate is therefore decided without evaluating any alpha (about a quarter of the
   benchmark's voxels: noise voxels, whose best alpha is the largest).
3. Second stage (:mod:`bids_w2v.encoding.refine`): one candidate per voxel (:func:`pick`) is
   evaluated first; its computed residual bounds every other alpha far more tightly (no
   leverage-spread term), and an alpha stays a candidate only if that lower bound, minus the
   full grid's rounding, does not exceed the value just computed.
4. The voxels are ordered by (first alpha, candidate range) and cut into blocks; ``full`` and
   ``exact`` use the same order and blocks (:func:`plan`). In both, each block evaluates the
   voxels of the first stage (those with two or more candidates) with one product per alpha,
   then the (alpha, voxel) pairs of the second stage with one product for all of them
   (:meth:`bids_w2v.encoding.inner.LooSelector.two_stage`); ``full`` evaluates the block's
   other columns with further products, ``exact`` skips them.
   The values ``exact`` computes are therefore computed by the same operations on the same
   operands in both, bit for bit (the second stage's decisions depend only on the first
   stage's values, the same in both), and the other values cannot be the full grid's
   minimum (the bounds hold whatever the order of the sums), so the argmin is the full grid's.

:data:`STATS` counts the (alpha, voxel) columns evaluated, for ``benchmarks/encoding.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .backends import Array, Ops
from .basis import matmul_depth, project_depth, sum_depth

#: Evaluated and possible (alpha, voxel) columns of the exact criterion since the last reset
#: (one ``(n, r) @ (r, 1)``-sized product each), for the benchmark's FLOP bound.
STATS = {"evaluated": 0, "total": 0}

#: Unit roundoff of float64.
U64 = 2.0**-53


def unit_roundoff(ops: Ops) -> float:
    """Unit roundoff of the working dtype (``2**-24`` for float32, ``2**-53`` for float64)."""
    return float(np.finfo(ops.np_work).eps) / 2


def tiniest(ops: Ops) -> float:
    """The smallest positive (subnormal) number of the working dtype: a product that underflows
    is off by at most half of it."""
    return float(np.finfo(ops.np_work).smallest_subnormal)


def nonneg_sum_bound(ops: Ops, k: int) -> tuple[float, float]:
    """``(up, tiny)`` with ``exact <= computed * up + tiny`` for a working-dtype product of
    nonnegative operands summing ``k`` terms per entry (any order), whose one factor was itself
    rounded to the working dtype (one relative rounding per entry), including underflow."""
    return 1.0 + 2.0 * gamma(k + 2, unit_roundoff(ops)), (k + 2) * tiniest(ops)


def gamma(k: int, u: float) -> float:
    """Error factor of a ``k``-term sum or dot product: ``2 k u`` (twice the classical bound)."""
    return 2.0 * k * u


def candidates(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Alphas whose lower bound does not exceed the voxel's best upper bound: (n_alphas, v)."""
    cand = lo <= hi.min(0)[None, :]
    cand[hi.argmin(0), np.arange(hi.shape[1])] = True  # never empty, even with NaN bounds
    return cand


def pick(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The alpha evaluated first per voxel: the candidate with the smallest midpoint of its bounds
    (the argmin in ~95% of voxels on the benchmark), or the smallest upper bound if none is finite.
    """
    cand = candidates(lo, hi)
    first = np.where(cand, (lo + hi) / 2, np.inf).argmin(0)
    every = np.arange(lo.shape[1])
    return np.where(cand[first, every], first, hi.argmin(0))


def plan(
    lo: np.ndarray,
    hi: np.ndarray,
    split: np.ndarray,
    width: int,
    prune: bool,
    count: bool = True,
    key: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Blocks ``(voxel positions, alpha indices, candidates)`` shared by ``exact`` and ``full``.

    Voxels are sorted by (``key`` if given, first candidate, last candidate, ``split``) and cut
    into blocks of
    ``width``; within a block they are sorted by ``split`` (the first alpha of the small-fit
    formula, :class:`bids_w2v.encoding.inner.LooSelector`), so that each formula covers a
    contiguous range of any subset of the columns. ``candidates`` is the block's
    (n_alphas, width) mask; the alphas are the candidates of any voxel of the block with
    ``prune``, else every alpha. :data:`STATS` counts the candidate columns (``prune``) or
    every column (``count``; :meth:`bids_w2v.encoding.inner.LooSelector.select` counts what
    it evaluates itself).
    """
    cand = candidates(lo, hi)
    n_alphas, v = cand.shape
    first = cand.argmax(0)
    last = n_alphas - 1 - cand[::-1].argmax(0)
    order = np.lexsort((split, last, first) + (() if key is None else (key,)))
    every = np.arange(n_alphas)
    for b0 in range(0, v, width):
        idx = order[b0 : b0 + width]
        idx = idx[np.argsort(split[idx], kind="stable")]
        block = cand[:, idx]
        alphas = np.flatnonzero(block.any(1)) if prune else every
        if count:
            STATS["evaluated"] += int(block.sum()) if prune else int(n_alphas * idx.size)
            STATS["total"] += int(n_alphas * idx.size)
        yield idx, alphas, block


def loo_bounds(
    sel, Yc: Array, Z: Array, width: int, pool=None, detail: bool = False
) -> tuple[np.ndarray, ...]:
    """Bounds ``lo, hi`` (n_alphas, v) on the leave-one-out values of :class:`LooSelector`.

    Notation of :class:`bids_w2v.encoding.inner.LooSelector`: ``c_i^2 = 1/(1 - H_ii)^2`` in
    ``[cmin^2, cmax^2]`` per alpha, ``cbar`` their midpoint and ``d`` their half range,
    ``P = U diag(g) z``, ``L = sum_i c_i^2 (y_i - P_i)^2``. Two exact decompositions:

    * ``L = S1 + cbar (||P||^2 - 2 P.y) + sum (c_i^2 - cbar) P_i (P_i - 2 y_i)`` with
      ``S1 = sum c_i^2 y_i^2`` (one ``(n_alphas, n) @ (n, v)`` float64 product for all
      alphas), ``||P||^2 = sum g^2 z^2``, ``P.y = sum g z^2``; the last term is at most
      ``d ||P|| ||P - 2y||`` (tight for large alphas, where ``P`` is small);
    * ``cmin^2 RSS <= L <= cmax^2 RSS`` with ``RSS = ||y||^2 - ||z||^2 + sum (1 - g)^2 z^2``.

    ``L`` is the criterion of the computed ``z`` (:func:`bids_w2v.encoding.basis.project`, in
    the working dtype), the one the full grid evaluates: each entry of ``z`` is within ``e =
    f ||y||`` of ``(U^T y)_k`` (:func:`~bids_w2v.encoding.basis.project_depth`), so ``P.y =
    sum g z^2`` up to ``e sum g |z|``, and ``||P||^2 = sum g^2 z^2`` up to the orthonormality
    of ``U``. The full grid's computed value differs from ``L`` by at most ``err = cmax^2
    (2 ||y - P|| dP + dP^2 + gamma_{s+3} T) + gamma64_{n+2} cmax^2 ||y||^2`` where ``dP =
    gamma_{m+3} B`` bounds the rounding of the computed ``P`` (``B >= || |U| |g z| ||``, from
    :func:`abs_norm`; ``m``: :func:`~bids_w2v.encoding.basis.matmul_depth`, as ``P`` is summed
    over blocks of columns of ``U``), ``s`` is :func:`~bids_w2v.encoding.basis.sum_depth` (the
    weighted sum over blocks of rows) and ``T`` is ``||P|| ||P - 2y||`` (small-fit formula) or
    ``||y - P||^2`` (residual formula). Returns ``lo - err``, ``hi + err`` and the index of
    the first alpha of the small-fit formula per voxel (``split``, see :meth:`LooSelector.values`);
    with ``detail``, also a dict of per-voxel arrays (last axis ``v``): ``err``, ``dP``, ``S1``
    (n_alphas, v) and ``e`` (v,), the bound on the error of ``z`` (for the second stage,
    :meth:`bids_w2v.encoding.inner.LooSelector.two_stage`).
    The sums ``sum g |z|`` and ``sum g v |z|``, which only enter error terms, are
    working-dtype products, bounded from above with :func:`nonneg_sum_bound`.
    Blocks of ``width`` voxels, on ``pool`` (:class:`bids_w2v.encoding.parallel.UnitPool`) if
    given.
    """
    ops = sel.ops
    ops.check_ieee()  # the rounding bounds below assume IEEE products
    n, r = sel.n, sel.r
    u = unit_roundoff(ops)
    g, gc, c2 = sel.g_high, sel.gc_high, sel.c2_high
    g2, gc2 = g * g, gc * gc
    ones_r = ops.full((1, r), 1.0, high=True)
    gstack = cat(ops, [g, g2, gc2, ones_r])  # (3 n_alphas + 1, r): one product, four sums
    cmin2, cmax2 = extreme(c2, max_=False)[:, None], extreme(c2, max_=True)[:, None]
    cbar, dlt = (cmax2 + cmin2) / 2, (cmax2 - cmin2) / 2
    lam, vec, rho = sel.abs_norm
    # sums of g |z| and g v |z|: they only enter error terms, so a working-dtype product
    # (nonnegative terms, bounded from above by `up` and `tiny`) is enough
    gcat = ops.to_work(cat(ops, [g, g * vec[None, :]]))
    up, tiny = nonneg_sum_bound(ops, r)
    # Z from basis.project: |z_k - (U^T y)_k| <= e_fac ||y||; float64 sums of nonnegative terms
    # and the orthonormality of U: relative error f1
    e_fac = gamma(project_depth(n) + 3, u) * (1.0 + sel.orth) * (1.0 + gamma(n + 8, U64))
    f1 = 2.0 * (gamma(n + r + 8, U64) + sel.orth)
    c2one = cat(ops, [c2, ops.full((1, n), 1.0, high=True)])  # S1 and ||y||^2: one product
    v = Yc.shape[1]

    def block(b0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y2 = ops.square_high(Yc[:, b0 : b0 + width])  # exact
        z2 = ops.square_high(Z[:, b0 : b0 + width])
        S1 = c2one @ y2
        S1, yy = S1[:-1], S1[-1:]
        G = gstack @ z2
        G1, G2, W = G[:-1].reshape(3, -1, z2.shape[1])
        zz = G[-1:]
        # |z_k - (U^T y)_k| <= e for Z = basis.project(U, y) (||U_k||^2 <= 1 + orth)
        e = e_fac * ops.sqrt(yy)
        gaz, gvz = (ops.to_high(gcat @ abs(Z[:, b0 : b0 + width])) * up + tiny).reshape(
            2, -1, z2.shape[1]
        )
        # P.y = sum g z (U^T y) = G1 - sum g z (z - U^T y); ||P||^2 = G2 (1 +- orth)
        dG1 = f1 * G1 + 1.01 * e * gaz  # also bounds the error of G2 as ||P||^2
        rss = (yy - zz) + W  # = yy - 2 G1 + G2
        d_rss = f1 * (yy + zz + W) + 2.02 * e * gaz
        nP = ops.sqrt(G2 + dG1)
        pm = G2 - 4.0 * G1 + 4.0 * yy
        pm2y = ops.sqrt(ops.where(pm > 0, pm, 0.0 * pm) + 5.0 * dG1 + 4.0 * f1 * yy)
        mid = S1 + cbar * (G2 - 2.0 * G1)
        slack = 3.0 * cbar * dG1 + dlt * nP * pm2y
        rss_lo = ops.where(rss > d_rss, rss - d_rss, 0.0 * rss)
        lo = ops.where(mid - slack > cmin2 * rss_lo, mid - slack, cmin2 * rss_lo)
        hi_b = cmax2 * (rss + d_rss)
        hi = ops.where(mid + slack < hi_b, mid + slack, hi_b)
        small = G2 <= W  # fit smaller than the residual in the span of U: expansion formula
        rss_hi = rss + d_rss
        B = ops.sqrt(lam * gvz * gvz + rho * G2) * (1.0 + gamma(r + 8, U64))
        dP = gamma(matmul_depth(r) + 3, u) * B
        term = ops.where(small, nP * pm2y, rss_hi)
        err = cmax2 * (2.0 * ops.sqrt(rss_hi) * dP + dP * dP + gamma(sum_depth(n) + 3, u) * term)
        err = err + gamma(n + 2, U64) * cmax2 * yy
        small_np = ops.to_numpy(small)
        split = np.where(small_np.any(0), small_np.argmax(0), small_np.shape[0])
        out = ops.to_numpy(lo - err), ops.to_numpy(hi + err), split
        if detail:
            out += (ops.to_numpy(err), ops.to_numpy(dP), ops.to_numpy(e)[0], ops.to_numpy(S1))
        return out

    starts = range(0, v, width)
    blocks = list(map(block, starts) if pool is None else pool.map(block, starts))
    if not blocks:
        empty = np.zeros((len(sel.alphas), 0))
        out = (empty, empty, np.zeros(0, dtype=np.int64))
        if detail:
            out += (empty, empty, np.zeros(0), empty)
    else:
        parts = list(zip(*blocks, strict=True))
        out = tuple(np.concatenate(p, -1) for p in parts)
    if detail:
        keys = ("err", "dP", "e", "S1")
        return out[:3] + (dict(zip(keys, out[3:], strict=True)),)
    return out


def abs_norm(ops: Ops, U: Array) -> tuple[float, Array, float]:
    """``(lam, v, rho)`` such that ``|| |U| x ||^2 <= lam (v.x)^2 + rho ||x||^2`` for every
    ``x`` (float64 ``U``, ``|U|`` elementwise).

    Any ``lam`` and unit ``v`` give such a bound with ``rho >= ||M - lam v v^T||_2``,
    ``M = |U|^T |U|``; ``lam, v`` are M's leading eigenpair from a power iteration (``|U|``
    has one large singular value, ~0.8 sqrt(r), and the others ~1), and ``rho`` is the
    Frobenius norm of the remainder plus the rounding of ``M``. For the error of ``U @ t``
    this replaces ``sqrt(r) ||t||`` (the bound for any orthonormal ``U``) by a value ~4 times
    smaller on spread ``t``.
    """
    A = abs(U)
    M = np.asarray(ops.to_numpy(A.T @ A), dtype=np.float64)
    r, n = M.shape[0], int(U.shape[0])
    v = np.full(r, 1.0 / np.sqrt(max(r, 1)))
    lam = 0.0
    for _ in range(30):
        w = M @ v
        lam = float(np.sqrt(w @ w))
        if lam == 0.0:
            break
        v = np.abs(w / lam)
    v = v / max(float(np.sqrt(v @ v)), 1e-300)
    lam = float(v @ M @ v)
    fro = float(np.sqrt((M * M).sum()))
    rest = float(np.sqrt(((M - lam * np.outer(v, v)) ** 2).sum()))
    # M's rounding (sums of n nonnegative terms), the remainder's and the norms' roundings
    rho = (rest + gamma(n + r + 8, U64) * (fro + abs(lam))) * (1.0 + gamma(r + 8, U64))
    vec = ops.asarray(v, high=True)
    return lam * (1.0 + gamma(8, U64)), vec, rho


def orthonormality(ops: Ops, U: Array) -> float:
    """A bound on ``||U^T U - I||_2`` for a float64 ``U`` (its Frobenius norm, computed, plus the
    rounding of ``U^T U``): the SVD basis is orthonormal to ~1e-11."""
    off = np.asarray(ops.to_numpy(U.T @ U), dtype=np.float64)
    off -= np.eye(off.shape[0])
    r, n = off.shape[0], int(U.shape[0])
    return float(np.sqrt((off**2).sum()) * (1 + 4 * U64) + gamma(n + 2, U64) * r)


def extreme(a: Array, max_: bool) -> Array:
    """Row-wise minimum or maximum of a numpy array or torch tensor."""
    if isinstance(a, np.ndarray):
        return a.max(1) if max_ else a.min(1)
    return a.amax(1) if max_ else a.amin(1)


def cat(ops: Ops, arrays: list[Array]) -> Array:
    """Concatenate along the first axis (numpy or torch)."""
    if isinstance(arrays[0], np.ndarray):
        return np.concatenate(arrays)
    return ops.torch.cat(arrays)
