"""A whole-brain participant's encoding fits, end to end: every layer on the same voxels.

Issue 19's target: 200,000 voxels, 2,000 scans and 19 layers of 768 features (wav2vec 2.0's
``conv0``-``conv6`` and ``transformer0``-``transformer11``) with the default settings of
``bids_w2v.encoding.cross_validated_scores`` (exact alpha search, float32, 5 contiguous outer
folds, the paper's 20 alphas, all the CPUs this process may use) and, as the participant
workflow's fit node computes them by default (``--participant-stats``), each voxel's p-value
(``pvalues=True``; ``--no-participant-stats`` leaves them out). The voxels are
``benchmarks/encoding.py``'s (planted signal from the first layer's features); layer ``l`` of
``L`` has the first layer's features plus ``l / (L - 1)`` times independent features of the
same kind (``make_data``'s generator with seed ``l``), so neighbouring layers are similar and
every layer predicts the voxels, less so the further it is from the first. The layers run one
after the other in this process, as the participant workflow's fit node runs them (one voxel matrix,
the features of one layer at a time), each inside ``bids_w2v.heap.retained_heap`` as in the node.

Prints the time per layer and in total, the peak extra memory of the fits (resident set size
over what the data took before them), and the FLOP bound of the whole run (GEMM flops of each
fit, as counted by ``benchmarks/encoding.py``, over the GEMM rates measured in this process
before and after the fits, the faster counting). Usage::

    python benchmarks/whole_brain.py --n-voxels 200000 --layers 19
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from encoding import (  # noqa: E402  (the benchmark's generator, rates and flop count)
    _peak_rss_mib,
    _reset_peak,
    _status_mib,
    exact_flops,
    gemm_rates,
    make_data,
)

from bids_w2v.encoding import cross_validated_scores, prune  # noqa: E402
from bids_w2v.encoding.parallel import blas_threads  # noqa: E402
from bids_w2v.heap import retained_heap  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=2000)
    ap.add_argument("--n-features", type=int, default=768)
    ap.add_argument("--n-voxels", type=int, default=200000)
    ap.add_argument("--layers", type=int, default=19)
    ap.add_argument(
        "--no-participant-stats",
        dest="pvalues",
        action="store_false",
        help="fit without the participant p-values (the app's default computes them)",
    )
    args = ap.parse_args(argv)
    n, p, v = args.n_samples, args.n_features, args.n_voxels
    _, Y = make_data(n, p, v, seed=0)
    Y = np.asarray(Y, dtype=np.float32)
    X0 = make_data(n, p, 1, seed=0)[0]  # (the features only: the same draws as with v voxels)
    cross_validated_scores(X0, Y[:, :300], pvalues=args.pvalues)  # imports, first calls
    n_tr = 4 * n // 5
    before = gemm_rates(n_tr, min(n_tr, p), "float32")
    base = _status_mib("VmRSS") if _reset_peak() else _peak_rss_mib()
    times, flops, flops64 = [], 0.0, 0.0
    start = time.perf_counter()
    for layer in range(args.layers):
        X = X0 + layer / max(args.layers - 1, 1) * make_data(n, p, 1, seed=layer)[0]
        prune.STATS.update(evaluated=0, total=0)
        t = time.perf_counter()
        with retained_heap():  # as the fit node runs it
            res = cross_validated_scores(X, Y, pvalues=args.pvalues)
        times.append(time.perf_counter() - t)
        f, f64 = exact_flops("ours-numpy-loo", n, p, v, prune.STATS["evaluated"])
        flops, flops64 = flops + f, flops64 + f64
        print(
            f"layer {layer:2d}: {times[-1]:6.1f} s, mean r {float(np.mean(res.scores)):.3f}, "
            f"{20 * prune.STATS['evaluated'] / max(prune.STATS['total'], 1):.2f} evaluated "
            "alphas per voxel and fold",
            flush=True,
        )
    total = time.perf_counter() - start
    extra = _peak_rss_mib() - base
    after = gemm_rates(n_tr, min(n_tr, p), "float32")
    rate, rate64 = max(before[0], after[0]), max(before[1], after[1])
    bound = flops / rate + flops64 / rate64
    print(
        f"{args.layers} layers x {v} voxels x {n} scans, {blas_threads()} threads, "
        f"{'with' if args.pvalues else 'without'} the participant p-values: "
        f"{total:.0f} s ({total / 60:.1f} min; fits {sum(times):.0f} s, per layer "
        f"{min(times):.1f}-{max(times):.1f} s), peak extra memory {extra:.0f} MiB; GEMM rates "
        f"{rate / 1e9:.0f} (float32) and {rate64 / 1e9:.0f} (float64) GFLOP/s; FLOP bound "
        f"{bound:.0f} s; the run took {total / bound:.2f}x the bound"
    )


if __name__ == "__main__":
    main()
