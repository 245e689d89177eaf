"""Second-stage bounds of the exact alpha search, from one evaluated alpha per voxel.

The first-stage bounds of :func:`bids_w2v.encoding.prune.loo_bounds` use the range of the
leave-one-out weights ``c_i^2`` over the samples, which is wide at small alphas: a voxel whose
best alpha is small keeps ~10 candidates. Once the criterion of one alpha ``a`` has been
evaluated for a voxel, its residual ``w = P_a - y`` (computed anyway) gives much tighter
bounds on every other alpha ``b``. With ``d = P_b - P_a = U (Delta g * z)`` (``Delta g =
g_b - g_a``), ``P_b - y = w + d`` and, splitting ``c_b^2 = cbar_b + delta_i`` around any
constant ``cbar_b`` (here the ``w^2``-weighted mean of ``c_b^2``, which minimises
``||delta * w||``),

``L_b = sum c_b^2 w^2 + 2 cbar_b <w, d> + 2 sum delta w d + sum c_b^2 d^2``

where ``<w, d> = -sum_k (1 - g_a,k) Delta g_k z_k^2`` up to ``e sum_k |Delta g_k z_k|``
(``U^T w = g_a z - U^T y`` and ``|z_k - (U^T y)_k| <= e`` for the computed ``z``, whose
criterion the full grid evaluates), ``|sum delta w d| <= ||delta * w|| ||d||``, ``||d|| =
||Delta g * z||`` and the last term lies in ``[cmin_b^2, cmax_b^2] ||d||^2``. ``sum c_b^2
w^2``, ``||delta * w||`` and ``||w||`` cost one ``(2 n_alphas + 1, n) @ (n, v)`` float64
product; the rest is ``O(n_alphas * r)`` per voxel.

Every quantity is bounded with the rounding of the computed ``w`` (``||w_hat - w|| <= dP_a +
u ||w_hat||``, ``dP`` from :func:`~bids_w2v.encoding.prune.loo_bounds`), of ``Z`` (``e``), of
the float64 sums (``gamma64``) and the distance of the float64 ``U`` from orthonormal
(``||U^T U - I||_F``, measured per fold), so ``lower`` is a rigorous lower bound of the exact
criterion of the computed ``z``; :meth:`bids_w2v.encoding.inner.LooSelector.select`
subtracts the full grid's rounding (``err``) and keeps only the alphas whose bound does not
exceed the value computed for ``a``: the others cannot be the full grid's first minimiser.
"""

from __future__ import annotations

import numpy as np

from .backends import Array, Ops
from .prune import U64, cat, extreme, gamma, nonneg_sum_bound, unit_roundoff


class Refiner:
    """Per-fold constants of the second-stage bounds of a :class:`LooSelector`."""

    def __init__(self, sel) -> None:
        ops = self.ops = sel.ops
        c2 = sel.c2_high  # (n_alphas, n)
        cmin2, cmax2 = _to_np(ops, extreme(c2, False)), _to_np(ops, extreme(c2, True))
        self.cmin2, self.cbar = cmin2, (cmin2 + cmax2) / 2
        cbar = ops.asarray(self.cbar, high=True)[:, None]
        ones = ops.full((1, sel.n), 1.0, high=True)
        self.stack = cat(ops, [c2, (c2 - cbar) ** 2, ones])  # (2 n_alphas + 1, n) float64
        g, gc = _to_np(ops, sel.g_high), _to_np(ops, sel.gc_high)
        # per alpha a: rows g_b gc_a, g_b g_a and g_b^2 for every b, then a row of ones
        g2one = np.concatenate([g * g, np.ones((1, g.shape[1]))])[None]
        g2one = np.broadcast_to(g2one, (len(g),) + g2one.shape[1:])
        self.pairs = np.concatenate([g[None] * gc[:, None], g[None] * g[:, None], g2one], 1)
        diff = g[:, None, :] - g[None, :, :]  # (b, a, r): g_b - g_a
        # (a, b, r) in the working dtype: sum_k |g_b - g_a| |z_k| only enters an error term
        self.absd = np.ascontiguousarray(np.abs(diff).transpose(1, 0, 2), dtype=ops.np_work)
        self.up, self.tiny = nonneg_sum_bound(ops, sel.r)
        self.orth = sel.orth  # ||U^T U - I||_2 <= orth
        self.n, self.r = sel.n, sel.r
        self.u = unit_roundoff(ops)

    def stats(self, W: Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``sum c^2 w^2`` and ``||delta * w||^2`` (n_alphas, k) and ``||w||^2`` (k,), float64."""
        ops = self.ops
        w2 = ops.square_high(W)  # exact: squares of working-dtype numbers
        both = _to_np(ops, self.stack @ w2)
        m = len(self.cbar)  # rows: c^2, (c^2 - cbar)^2 per alpha, then ones
        return both[:m], both[m:-1], both[-1]

    def lower(
        self,
        z2: np.ndarray,
        az: np.ndarray,
        first: np.ndarray,
        ta: np.ndarray,
        dw: np.ndarray,
        wn2: np.ndarray,
        dP: np.ndarray,
        e: np.ndarray,
    ) -> np.ndarray:
        """Lower bounds (n_alphas, k) on the exact criterion of every alpha, float64.

        ``z2``: the squares of the block's ``Z`` (r, k) in float64; ``az``: ``|Z|`` in the
        working dtype; ``first``: the evaluated
        alpha per voxel; ``ta, dw, wn2``: :meth:`stats` of its computed residuals; ``dP``: the
        bound on the error of its computed ``P`` (k,); ``e`` (k,): the error of ``Z`` is at most
        ``e`` (:func:`~bids_w2v.encoding.prune.loo_bounds`).
        """
        n, r, u = self.n, self.r, self.u
        k = z2.shape[1]
        cols = np.arange(k)
        # sums over k of g_b^2 z^2, z^2 (the last row) and, with a = first of the voxel,
        # g_b gc_a z^2 and g_b g_a z^2: float64 products of nonnegative terms, relative error
        # gamma64_{r+2}
        # and sum_k |g_b - g_a| |z_k| (AZ, from above), for the error of z in <w, d>
        sums = np.empty((self.pairs.shape[1], k))
        AZ = np.empty((len(self.cbar), k))
        for a in np.unique(first):  # (blocks are sorted by first: mostly one alpha)
            sel = np.flatnonzero(first == a)
            if sel.size == k:
                sums, AZ = self.pairs[a] @ z2, self.absd[a] @ az
            else:
                sums[:, sel] = self.pairs[a] @ np.take(z2, sel, axis=1)
                AZ[:, sel] = self.absd[a] @ np.take(az, sel, axis=1)
        AZ = np.asarray(AZ, dtype=np.float64) * self.up + self.tiny
        m = len(self.cbar)
        R, R2, q = sums[:m], sums[m : 2 * m], sums[2 * m :]  # q: g_b^2 z^2, then z^2
        Ra, R2a = R[first, cols][None, :], R2[first, cols][None, :]
        big = 1.0 + gamma(n + r + 8, U64)  # inflation of computed positive quantities
        # S_b = sum_k gc_a (g_b - g_a) z^2 and ||(g_b - g_a) z||^2 for the computed z; in
        # <w, d>, the error of z adds at most e sum_k |g_b - g_a| |z_k|
        s_hat = R - Ra
        dn2 = q[:-1] - 2.0 * R2 + R2a
        dn2_err = gamma(r + 4, U64) * (q[:-1] + 2.0 * R2 + R2a)
        s_err = gamma(r + 4, U64) * (R + Ra) + e[None, :] * AZ * big
        orth = self.orth
        d_hi = np.sqrt(np.maximum(dn2 + dn2_err, 0.0)) * big * np.sqrt(1.0 + orth)
        d_lo = np.sqrt(np.maximum(dn2 - dn2_err, 0.0)) / big
        d_lo = d_lo * np.sqrt(max(1.0 - orth, 0.0))
        nw = np.sqrt(wn2) * big
        eps = (dP + 1.01 * u * nw) * big  # ||w_hat - w||
        pa = np.sqrt(R2a[0]) * big  # >= ||g_a z||
        # the centre of c_b^2 in the split (any constant is valid): the w^2-weighted mean of
        # c_b^2, which minimises ||(c_b^2 - centre) w||^2 = dw + (centre - cbar) ((centre +
        # cbar) ||w||^2 - 2 ta) (dw is computed for the midpoint cbar of c_b^2's range)
        mid, wn = self.cbar[:, None], wn2[None, :]
        cbar = np.where(wn > 0, ta / np.where(wn > 0, wn, 1.0), mid)
        shift = cbar - mid
        both = (cbar + mid) * wn
        v = dw + shift * (both - 2.0 * ta)
        v_err = gamma(n + 16, U64) * (np.abs(dw) + np.abs(shift) * (both + 2.0 * ta))
        ndw = np.sqrt(np.maximum(v + v_err, 0.0)) * big
        # <w, d> = -S_b + (g_a z)^T (U^T U - I) (Delta g z) + (z - U^T y)^T (Delta g z), and
        # <w_hat, d - eps> = <w, d> + <eps, d> - <w_hat, eps>
        cross_err = eps[None, :] * (d_hi + nw[None, :]) + orth * pa[None, :] * d_hi
        cross = -s_hat - s_err - cross_err
        quad = self.cmin2[:, None] * np.maximum(d_lo - eps[None, :], 0.0) ** 2
        lo = ta * (1.0 - gamma(n + 2, U64)) + 2.0 * cbar * cross
        lo = lo - 2.0 * ndw * (d_hi + eps[None, :]) + quad
        lo = lo - gamma(16, U64) * (ta + 2.0 * cbar * np.abs(cross) + quad)
        lo[np.isnan(lo)] = -np.inf
        lo[first, cols] = -np.inf  # the evaluated alpha itself
        return lo


def _to_np(ops: Ops, a: Array) -> np.ndarray:
    return np.asarray(ops.to_numpy(a), dtype=np.float64)
