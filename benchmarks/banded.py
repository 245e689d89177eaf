"""Benchmark: cost of a two-space joint (banded ridge) model against two single-space models.

Measured in one run on the same synthetic data and the same 5 contiguous outer folds:

* **single-ours**: the pipeline's single-model fit of each space
  (:func:`bids_w2v.encoding.cross_validated_scores`, the default ``--inner-cv loo``, full alpha
  grid), once per space: what two plain ``--model`` fits cost;
* **joint (loo)**: :func:`~bids_w2v.encoding.banded.banded_scores` of both spaces without
  partitioning (``partition=False``), ``solver="loo"`` (the default of ``--joint``): one banded
  ridge, ``--joint-n-iter`` random-search draws, each scored by efficient leave-one-out;
  with ``--full-search`` also the same with every (draw, alpha) evaluated (``search="full"``);
* **joint+partition (loo)**: what ``--joint A B`` runs: the banded ridge and the two models
  without each space;
* with ``--himalaya``, the same with ``solver="himalaya"`` (``GroupRidgeCV``, inner 5-fold),
  and **single-himalaya**: himalaya's ``RidgeCV`` (inner 5-fold) of each space, through
  ``banded_scores`` with one space.

Ratios are against **2 x single-ours** (the two single models' total), measured in the same run.
The data: ``--samples`` scans, a "speech" space of ``--p1`` features (768 as a wav2vec2 layer)
and an "acoustic" space of ``--p2`` features (80 as a log-mel), voxels mixing both plus noise.
At 50,000 voxels the fits are linear in the number of voxels once the per-fold decompositions
are amortised; when ``--voxels`` is below 50,000 the table also gives the times scaled
linearly to 50,000 voxels (labelled as such). Example::

    .venv/bin/python benchmarks/banded.py --voxels 2000 --samples 1000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bids_w2v.encoding import cross_validated_scores
from bids_w2v.encoding.banded import banded_scores


def make_data(n, p1, p2, v, seed=0):
    rng = np.random.default_rng(seed)
    X1 = rng.standard_normal((n, 64)) @ rng.standard_normal((64, p1)) + rng.standard_normal((n, p1))
    X2 = rng.standard_normal((n, p2))
    Y = (
        X1 @ rng.standard_normal((p1, v)) * 0.02
        + X2 @ rng.standard_normal((p2, v)) * 0.05
        + rng.standard_normal((n, v))
    )
    return X1.astype("float32"), X2.astype("float32"), Y.astype("float32")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--p1", type=int, default=768)
    ap.add_argument("--p2", type=int, default=80)
    ap.add_argument("--voxels", type=int, default=2000)
    ap.add_argument("--joint-n-iter", type=int, default=20)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--himalaya", action="store_true", help="also time the himalaya solver (slow on CPUs)"
    )
    ap.add_argument(
        "--full-search", action="store_true", help="also time the loo solver's full search"
    )
    args = ap.parse_args(argv)
    X1, X2, Y = make_data(args.samples, args.p1, args.p2, args.voxels)
    scale = 50000 / args.voxels
    print(
        f"n={args.samples} scans, p={args.p1}+{args.p2}, v={args.voxels} voxels, "
        f"backend={args.backend}, device={args.device}, 5 outer folds, "
        f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())} at start",
        flush=True,
    )
    head = "| method | seconds | ratio to 2 x single-ours |"
    if scale != 1:
        head += " seconds scaled to 50k voxels (linear extrapolation) |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|", flush=True)
    common = dict(n_iter=args.joint_n_iter, backend=args.backend, device=args.device)
    single = dict(backend=args.backend, device=args.device)
    n = args.joint_n_iter
    methods = {
        "2 x single-ours (loo, exact search)": lambda: (
            cross_validated_scores(X1, Y, **single),
            cross_validated_scores(X2, Y, **single),
        ),
        f"joint (loo, {n} draws, exact search)": lambda: banded_scores(
            [X1, X2], Y, partition=False, **common
        ),
        "joint+partition (loo: what --joint runs)": lambda: banded_scores(
            [X1, X2], Y, partition=True, **common
        ),
    }
    if args.full_search:
        methods[f"joint (loo, {n} draws, full search)"] = lambda: banded_scores(
            [X1, X2], Y, partition=False, search="full", **common
        )
    if args.himalaya:
        hima = dict(common, solver="himalaya")
        methods["2 x single-himalaya (RidgeCV, inner 5-fold)"] = lambda: (
            banded_scores([X1], Y, **hima),
            banded_scores([X2], Y, **hima),
        )
        methods[f"joint (himalaya, {n} draws, inner 5-fold)"] = lambda: banded_scores(
            [X1, X2], Y, partition=False, **hima
        )
        methods["joint+partition (himalaya)"] = lambda: banded_scores(
            [X1, X2], Y, partition=True, **hima
        )
    # warm-up (imports, first BLAS calls) outside the timings
    cross_validated_scores(X1[:60, :8], Y[:60, :4], **single)
    banded_scores([X1[:60, :8], X2[:60, :4]], Y[:60, :4], **dict(common, n_iter=2))
    ref = None
    for name, fn in methods.items():
        sec, _ = timed(fn)
        ref = ref or sec
        line = f"| {name} | {sec:.1f} | {sec / ref:.2f} |"
        if scale != 1:
            line += f" {sec * scale:.0f} |"
        print(line, flush=True)
    print(f"load average at end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
