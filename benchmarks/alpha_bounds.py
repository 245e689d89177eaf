"""How far can a rigorous pruning of the alpha grid go? Bounds of the exact search vs the curves.

On one outer training fold of ``benchmarks/encoding.py``'s data (same generator, same
standardisation), computes for every voxel the leave-one-out values of all alphas exactly as
``alpha_search="full"`` does (:meth:`bids_w2v.encoding.inner.LooSelector.values`) and the
bounds of the exact search (:func:`bids_w2v.encoding.prune.loo_bounds`), then prints

* how flat the curves are: the mean number of alphas whose value is within a relative ``w`` of
  the voxel's minimum (any rigorous pruning must keep, per voxel, every alpha that its bounds
  cannot separate from the minimum, so with bounds of relative width ``w`` it keeps at least
  about that many alphas);
* the candidates of the first-stage bounds and their relative width, and the alphas the exact
  search evaluates in its two stages (:meth:`bids_w2v.encoding.inner.LooSelector.two_stage`);
* both per best alpha (which voxels set the cost);
* what limits the second stage: of its (alpha, voxel) pairs, the share whose value beats the
  first evaluated alpha's and the share that the full grid's minimum, were it known before the
  second stage, would exclude (the most that any order of the second stage, e.g. in rounds,
  could save); and how much the smallest eigenvalue of ``U^T diag(c_b^2) U`` exceeds
  ``min_i c_b,i^2``, the factor of the second-stage bound's quadratic term.

Usage::

    python benchmarks/alpha_bounds.py --n-voxels 2000 --dtype float32
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from encoding import make_data  # noqa: E402  (the benchmark's data generator)

from bids_w2v.encoding import DEFAULT_ALPHAS  # noqa: E402
from bids_w2v.encoding.backends import NumpyOps  # noqa: E402
from bids_w2v.encoding.basis import project, svd_basis  # noqa: E402
from bids_w2v.encoding.inner import LooSelector, plan_width, second_stage  # noqa: E402
from bids_w2v.encoding.prune import candidates, loo_bounds, pick, plan  # noqa: E402
from bids_w2v.encoding.refine import Refiner  # noqa: E402

WIDTHS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=2000)
    ap.add_argument("--n-features", type=int, default=768)
    ap.add_argument("--n-voxels", type=int, default=2000)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    X, Y = make_data(args.n_samples, args.n_features, args.n_voxels, args.seed)
    train = np.arange(args.n_samples // 5, args.n_samples)  # the first outer fold's training
    Xtr = X[train]
    Xtr = (Xtr - Xtr.mean(0)) / Xtr.std(0)
    ops = NumpyOps(args.dtype)
    sel = LooSelector(ops, svd_basis(ops, ops.asarray(Xtr, high=True)), DEFAULT_ALPHAS)
    Yc = ops.asarray(Y[train] - Y[train].mean(0))
    Z = project(ops, sel.U, Yc)
    lo, hi, split = loo_bounds(sel, Yc, Z, plan_width(ops, *Yc.shape))
    order = np.argsort(split, kind="stable")
    values = np.empty((len(DEFAULT_ALPHAS), Yc.shape[1]))
    values[:, order] = sel.values(Yc[:, order], Z[:, order], split[order], np.arange(20))
    vmin = values.min(0)
    rel = (values - vmin) / vmin
    best = values.argmin(0)
    cand = candidates(lo, hi).sum(0)
    evaluated, second = two_stage_counts(sel, Yc, Z, vmin)
    width = ((hi - lo) / vmin)[best, np.arange(best.size)]
    print(
        f"n_train={train.size} n_features={args.n_features} n_voxels={args.n_voxels} "
        f"dtype={args.dtype}, one outer training fold, {len(DEFAULT_ALPHAS)} alphas"
    )
    print(
        "all voxels: mean alphas within w of the minimum: "
        + ", ".join(f"w={w:g}: {(rel <= w).sum(0).mean():.2f}" for w in WIDTHS)
    )
    print(
        f"first stage: {cand.mean():.2f} candidates per voxel; relative width of the bounds at "
        f"the best alpha: median {np.median(width):.1e}; evaluated by the exact search (two "
        f"stages): {evaluated.mean():.2f} per voxel"
    )
    print(
        "| best alpha | voxels | candidates (bounds) | evaluated (two stages) | within 1e-3 "
        "| within 1e-4 | within 1e-5 | bound width at best (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for a in np.unique(best):
        m = best == a
        within = [(rel[:, m] <= w).sum(0).mean() for w in (1e-3, 1e-4, 1e-5)]
        print(
            f"| {DEFAULT_ALPHAS[a]:.1e} | {m.sum()} | {cand[m].mean():.2f} | "
            f"{evaluated[m].mean():.2f} | "
            + " | ".join(f"{x:.2f}" for x in within)
            + f" | {np.median(width[m]):.1e} |"
        )
    pairs = max(second["pairs"], 1)
    gain = quadratic_gain(sel)
    print(
        f"second stage: {second['pairs'] / Yc.shape[1]:.2f} pairs per voxel; "
        f"{second['better'] / pairs:.1%} of them beat the first evaluated alpha, "
        f"{second['oracle'] / pairs:.1%} would be excluded by the known minimum; "
        f"lambda_min(U^T diag(c_b^2) U) / min c_b^2: {gain.max():.3f} at most "
        f"(smallest alpha {gain[0]:.3f}, largest {gain[-1]:.3f})"
    )


def two_stage_counts(
    sel: LooSelector, Yc: np.ndarray, Z: np.ndarray, vmin: np.ndarray
) -> tuple[np.ndarray, dict]:
    """Alphas the exact search evaluates per voxel (both stages), as ``LooSelector.select``,
    and counts of the second stage's (alpha, voxel) pairs: all of them, those whose value is
    below the first evaluated alpha's, those whose second-stage bound exceeds ``vmin`` (the
    full grid's minimum per voxel)."""
    sel.refiner = Refiner(sel)
    lower, seen = sel.refiner.lower, []

    def capture(*args):  # the second-stage bounds of the block that two_stage computes
        seen.append(lower(*args))
        return seen[-1]

    sel.refiner.lower = capture
    counts = {"pairs": 0, "better": 0, "oracle": 0}
    width = plan_width(sel.ops, *Yc.shape)
    lo, hi, split, det = loo_bounds(sel, Yc, Z, width, detail=True)
    first = pick(lo, hi)
    out = np.zeros(Yc.shape[1], dtype=np.int64)
    for idx, _, cand in plan(lo, hi, split, width, prune=True, count=False, key=first):
        part = {key: val[..., idx] for key, val in det.items()}
        seen.clear()
        values, _ = sel.two_stage(Yc[:, idx], Z[:, idx], split[idx], cand, first[idx], part)
        out[idx] = np.isfinite(values).sum(0)
        if seen:  # (no second stage in a block whose voxels have one candidate each)
            fstar = values[first[idx], np.arange(idx.size)]
            bound = seen[0] - part["err"]
            second = second_stage(cand, bound, fstar, first[idx])
            counts["pairs"] += int(second.sum())
            counts["better"] += int((second & (values < fstar)).sum())
            counts["oracle"] += int((second & (bound > vmin[idx])).sum())
    return out, counts


def quadratic_gain(sel: LooSelector) -> np.ndarray:
    """Per alpha ``b``, ``lambda_min(U^T diag(c_b^2) U) / min_i c_b,i^2``: how much larger the
    quadratic term ``sum c_b^2 d^2`` (``d = U t``) of the second-stage bound could be taken
    than ``min c_b^2 ||d||^2`` (:meth:`bids_w2v.encoding.refine.Refiner.lower`)."""
    U, c2 = np.asarray(sel.U_high), np.asarray(sel.c2_high)
    lam = np.array([np.linalg.eigvalsh((U * c[:, None]).T @ U)[0] for c in c2])
    return lam / c2.min(1)


if __name__ == "__main__":
    main()
