"""Where the time of one encoding fit goes: CPU seconds per step of the exact search.

Runs ``bids_w2v.encoding.cross_validated_scores`` on ``benchmarks/encoding.py``'s data (same
generator, float32, 5 outer folds, 20 alphas) and charges each step's thread CPU time (summed
over the pool's threads) by wrapping the engine's functions for the duration of the run:

* ``project``: ``Z = U^T Y`` in float32 (by blocks of rows, ``basis.project``);
* ``bounds``: the first-stage bounds (:func:`bids_w2v.encoding.prune.loo_bounds`);
* ``evaluate``: the evaluated columns of the criterion (:meth:`LooSelector._columns` and the
  second stage's :meth:`LooSelector._pairs`: float32 GEMMs plus their gathers and
  element-wise passes), without ``stats``;
* ``stats`` and ``lower``: the second stage (:mod:`bids_w2v.encoding.refine`);
* ``permute``: the chunk's columns put into the search's order and back;
* ``refit`` and ``pearson``: predictions on the held-out fold and their r;
* ``other``: the rest of the fit (SVDs, selector setup, centring, planning, Python).

The GEMM seconds printed beside are the flops of ``project``, ``evaluate`` and ``refit`` at the
single-thread rates measured in the same process, so ``step - GEMM`` is the work outside the
products. Usage::

    python benchmarks/encoding_profile.py --n-voxels 20000 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))

from encoding import make_data  # noqa: E402  (the benchmark's data generator)

from bids_w2v.encoding import cross_validated_scores, inner, outer, prune, refine  # noqa: E402
from bids_w2v.heap import retained_heap  # noqa: E402

STEPS = ("project", "bounds", "evaluate", "stats", "lower", "permute", "refit", "pearson")


def gemm_rate(dtype: type, n: int, r: int, k: int = 1024) -> float:
    """Single-thread GEMM rate (flop/s) of an ``(n, r) @ (r, k)`` product."""
    a, b = np.ones((n, r), dtype), np.ones((r, k), dtype)
    with threadpool_limits(1):
        a @ b
        t, reps = time.perf_counter(), 0
        while time.perf_counter() - t < 1.0:
            a @ b
            reps += 1
    return 2.0 * n * r * k * reps / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=2000)
    ap.add_argument("--n-features", type=int, default=768)
    ap.add_argument("--n-voxels", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    X, Y = make_data(args.n_samples, args.n_features, args.n_voxels)
    Y = np.asarray(Y, dtype=np.float32)
    cross_validated_scores(X, Y[:, :300])  # imports and first calls out of the timing
    cpu: dict[str, float] = collections.defaultdict(float)
    lock = threading.Lock()
    saved = []

    def wrap(owner: object, name: str, step: str) -> None:
        fn = getattr(owner, name)
        saved.append((owner, name, fn))

        def timed(*a, **k):
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    cpu[step] += time.thread_time() - t

        setattr(owner, name, timed)

    wrap(outer, "project", "project")
    wrap(inner, "loo_bounds", "bounds")
    wrap(inner.LooSelector, "_columns", "evaluate")
    wrap(inner.LooSelector, "_pairs", "evaluate")  # the second stage's batched product
    wrap(refine.Refiner, "stats", "stats")
    wrap(refine.Refiner, "lower", "lower")
    wrap(inner, "permute_columns", "permute")
    wrap(outer, "refit_predict", "refit")
    wrap(outer, "pearson_columns", "pearson")
    prune.STATS.update(evaluated=0, total=0)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with retained_heap():  # as the fit node runs it
            cross_validated_scores(X, Y, n_threads=args.threads)
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    wall, total = time.perf_counter() - t0, time.process_time() - c0
    cpu["evaluate"] -= cpu["stats"]  # stats runs inside the first stage's evaluations
    n_tr = args.n_samples - args.n_samples // 5
    r = min(n_tr, args.n_features)
    f32, f64 = gemm_rate(np.float32, n_tr, r), gemm_rate(np.float64, n_tr, r)
    folds = 5
    gemm = {
        "project": 2.0 * n_tr * r * args.n_voxels * folds / f32,
        "evaluate": 2.0 * n_tr * r * prune.STATS["evaluated"] / f32,
        "refit": 2.0 * (args.n_samples // 5) * r * args.n_voxels * folds / f32,
    }
    evaluated = prune.STATS["evaluated"] / max(args.n_voxels * folds, 1)
    print(
        f"n_samples={args.n_samples} n_features={args.n_features} n_voxels={args.n_voxels} "
        f"threads={args.threads}: wall {wall:.2f} s, CPU {total:.2f} s; {evaluated:.2f} "
        f"evaluated alphas per voxel and fold; single-thread GEMM rates {f32 / 1e9:.0f} "
        f"(float32) and {f64 / 1e9:.0f} (float64) GFLOP/s"
    )
    print("| step | CPU s | share | GEMM s at the measured rate | outside the GEMMs s |")
    print("|---|---|---|---|---|")
    other = total - sum(cpu[s] for s in STEPS)
    for step in (*STEPS, "other"):
        sec = other if step == "other" else cpu[step]
        g = gemm.get(step)
        cells = (f"{g:.2f}", f"{sec - g:.2f}") if g is not None else ("", f"{sec:.2f}")
        print(f"| {step} | {sec:.2f} | {sec / total:.0%} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
