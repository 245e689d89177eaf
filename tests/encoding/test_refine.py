"""Second-stage bounds of the exact search: below the full grid's values, and they prune."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.encoding import DEFAULT_ALPHAS, prune
from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.basis import project, svd_basis
from bids_w2v.encoding.inner import LooSelector
from bids_w2v.encoding.refine import Refiner
from bids_w2v.encoding.ridge import _standardise

from .test_prune import KINDS, design


def _setup(kind: str, seed: int, dtype: str):
    ops = get_ops("numpy", "cpu", dtype)
    X, Y = design(kind, seed)
    Xs, _ = _standardise(X, X[:1])
    basis = svd_basis(ops, Xs)
    sel = LooSelector(ops, basis, DEFAULT_ALPHAS)
    sel.refiner = Refiner(sel)
    Yc = ops.asarray(Y - Y.mean(0))
    Yc[:, np.ptp(Y, 0) == 0] = 0.0
    Z = project(ops, basis.U, Yc)
    lo, hi, split, det = prune.loo_bounds(sel, Yc, Z, 64, detail=True)
    order = np.argsort(split, kind="stable")  # one block, sorted as the plan sorts a block
    Yc, Z, split, lo, hi = Yc[:, order], Z[:, order], split[order], lo[:, order], hi[:, order]
    det = {key: val[..., order] for key, val in det.items()}
    return ops, basis, sel, Yc, Z, split, lo, hi, det


def _exact_criterion(basis, sel, Yc, Z) -> np.ndarray:
    """Leave-one-out squared errors in float64 from the definition (hat matrix diagonal),
    independently of the selector's arithmetic, of the computed ``Z``: the fit is that of
    ``y + U (Z - U^T y)``, whose projection on the basis is ``Z`` (the criterion that the full
    grid evaluates)."""
    X = basis.U * basis.s  # centred design in the basis, float64
    y = np.asarray(Yc, dtype=np.float64)
    U = np.asarray(basis.U, dtype=np.float64)
    fitted = y + U @ (np.asarray(Z, dtype=np.float64) - U.T @ y)
    n = X.shape[0]
    out = []
    for alpha in DEFAULT_ALPHAS:
        H = X @ np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T) + 1.0 / n
        e = (y - H @ fitted) / (1.0 - np.diag(H))[:, None]
        out.append((e * e).sum(0))
    return np.array(out)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_second_stage_bounds_lie_below_the_criterion(kind, dtype) -> None:
    """For every voxel and alpha: lower - err <= the full grid's computed value, and lower <=
    the exact criterion (float64, from the definition)."""
    for seed in range(3):
        ops, basis, sel, Yc, Z, split, lo, hi, det = _setup(kind, seed, dtype)
        k = Yc.shape[1]
        every = np.arange(k)
        first = prune.pick(lo, hi)
        full = sel.values(Yc, Z, split, np.arange(len(DEFAULT_ALPHAS)))
        ta, dw, wn2 = np.zeros_like(full), np.zeros_like(full), np.zeros(k)
        T = [ops.empty((sel.r * k,)), ops.empty((sel.n * k,)), ops.empty((sel.n * k,))]
        S1 = ops.to_numpy(
            sel.c2_high @ (np.asarray(Yc, dtype=np.float64) ** 2)
        )  # only used for the values, which are checked against ``full``
        Y2 = Yc + Yc
        for a in np.unique(first):
            cols = np.flatnonzero(first == a)
            val, st = sel._columns(Yc, Y2, Z, split, a, cols, S1[a], T, True)
            ta[:, cols], dw[:, cols], wn2[cols] = st
            np.testing.assert_allclose(val, full[a, cols], rtol=1e-5)
        z2 = np.asarray(Z, dtype=np.float64) ** 2
        az = np.abs(np.asarray(Z))
        lower = sel.refiner.lower(z2, az, first, ta, dw, wn2, det["dP"][first, every], det["e"])
        assert (lower - det["err"] <= full).all(), kind
        exact = _exact_criterion(basis, sel, Yc, Z)
        scale = np.abs(exact).max(0) + 1e-300
        assert (lower <= exact + 1e-9 * scale).all(), kind


def test_second_stage_prunes_first_stage_candidates() -> None:
    """On voxels with planted signal, the second stage leaves far fewer alphas to evaluate than
    the first-stage candidates (the saving the two stages exist for)."""
    ops, basis, sel, Yc, Z, split, lo, hi, det = _setup("ar-noise", 0, "float32")
    prune.STATS.update(evaluated=0, total=0)
    cand = prune.candidates(lo, hi)
    Yc0, Z0 = Yc.copy(), Z.copy()
    sel.select(Yc, Z, search="exact", pool=None)
    assert prune.STATS["evaluated"] < 0.8 * cand.sum()
    # select permutes the columns of Yc and Z into its blocks' order and restores them
    np.testing.assert_array_equal(Yc, Yc0)
    np.testing.assert_array_equal(Z, Z0)
    # keep_yc=False (the fit, which discards Yc afterwards): Z restored, Yc a column permutation
    best = sel.select(Yc, Z, search="exact", pool=None)
    assert (sel.select(Yc, Z, search="exact", pool=None, keep_yc=False) == best).all()
    np.testing.assert_array_equal(Z, Z0)
    order = np.lexsort(Yc)  # Yc's columns, sorted, are Yc0's
    np.testing.assert_array_equal(Yc[:, order], Yc0[:, np.lexsort(Yc0)])


@pytest.mark.parametrize("kind", ["ar-noise", "near-ties", "tiny-scale"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batched_pairs_match_the_criterion(kind, dtype) -> None:
    """The second stage's batched product (``_pairs``: every (alpha, voxel) pair of a block in
    one product, both formulas, more pairs than one product holds) gives each pair's value as
    the per-alpha evaluation does, and the criterion from its definition."""
    ops, basis, sel, Yc, Z, split, lo, hi, det = _setup(kind, 0, dtype)
    k = 16
    idx = np.linspace(0, Yc.shape[1] - 1, k).astype(int)  # spread over split (still sorted)
    Yc, Z, split = Yc[:, idx], Z[:, idx], split[idx]
    rng = np.random.default_rng(1)
    mask = rng.random((len(DEFAULT_ALPHAS), k)) < 0.4
    pa, pc = np.nonzero(mask)
    assert pa.size > k and (split[pc] <= pa).any() and (split[pc] > pa).any()
    S1 = np.asarray(sel.c2_high @ np.asarray(Yc, dtype=np.float64) ** 2)
    bufs = tuple(ops.empty((m * k,)) for m in (sel.r, sel.n, sel.n))
    got = sel._pairs(Yc, Yc + Yc, Z, split, pa, pc, S1, bufs)
    ref = sel.values(Yc, Z, split, np.arange(len(DEFAULT_ALPHAS)))[pa, pc]
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == "float32" else 1e-12)
    exact = _exact_criterion(basis, sel, Yc, Z)[pa, pc]
    np.testing.assert_allclose(got, exact, rtol=1e-3 if dtype == "float32" else 1e-9)
