"""Participant-level significance on simulated AR(1) data: false-positive rate, power, time.

Compares the tests of :mod:`bids_w2v.encoding.significance` (circular shifts of the held-out
predictions; Bartlett's effective degrees of freedom; per fold with Bonferroni over folds, or of
the mean over folds) and the naive t test of r with ``n - 2``
degrees of freedom per fold (Fisher z over folds), which ignores autocorrelation.

Null data: features and voxels independent AR(1) series (``--phi-x``, ``--phi-y``), fitted by
:func:`bids_w2v.encoding.cross_validated_scores` (5 contiguous folds, default alphas); planted
voxels add a linear readout of the features. Reported: the share of null voxels with p < 0.05
(nominal 0.05), the share of simulations with any null voxel at BH q < 0.05 when every voxel is
null (the family-wise rate FDR controls under the complete null; nominal <= 0.05), and the
share of planted voxels found at q < 0.05 in mixed data (power). Then the time of each test
next to the encoding fit on one whole-brain-sized layer (``--time-voxels``).

Usage: python benchmarks/participant_significance.py [--sims 20] [--time-voxels 50000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from bids_w2v.encoding import cross_validated_scores
from bids_w2v.encoding.significance import (
    bonferroni_folds,
    circular_shift_pvalues,
    effective_dof_pvalues,
    participant_pvalues,
)
from bids_w2v.group.statistics import fdr_bh


def ar1(rng, n, k, phi):
    e = rng.standard_normal((n, k))
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return out


def naive_pvalues(pred, data, folds):
    """Fisher z of each fold's r with n - 3 (independent samples), averaged over folds."""
    z = []
    for _, test in folds:
        p, y = pred[test], data[test]
        p = p - p.mean(0)
        y = y - y.mean(0)
        r = (p * y).sum(0) / np.sqrt((p * p).sum(0) * (y * y).sum(0))
        z.append(np.arctanh(np.clip(r, -0.999999, 0.999999)) * np.sqrt(len(test) - 3))
    return stats.norm.sf(np.mean(z, 0) * np.sqrt(len(folds)))


def shift_per_fold(pred, data, folds):
    """Circular-shift null of each fold's r, Bonferroni over folds."""
    return bonferroni_folds(
        [
            circular_shift_pvalues(pred[test], data[test], [(None, np.arange(len(test)))])[1]
            for _, test in folds
        ]
    )


TESTS = {
    "effective-dof per fold, Bonferroni (chosen)": participant_pvalues,
    "circular-shift per fold, Bonferroni": shift_per_fold,
    "effective-dof of the mean (folds independent)": lambda p, y, f: effective_dof_pvalues(p, y, f)[
        1
    ],
    "circular-shift of the mean": lambda p, y, f: circular_shift_pvalues(p, y, f)[1],
    "naive (n-3, Fisher z)": naive_pvalues,
}


def simulate(rng, args, n_null, n_planted):
    x = ar1(rng, args.scans, args.features, args.phi_x)
    y = ar1(rng, args.scans, n_null + n_planted, args.phi_y)
    if n_planted:
        w = rng.standard_normal((args.features, n_planted))
        signal = x @ w
        signal /= signal.std(0)
        y[:, n_null:] += args.snr * signal
    res = cross_validated_scores(
        x, y, n_folds=5, gap=args.gap, return_predictions=True, centred_predictions=True
    )
    return res.predictions.astype(np.float64), y, res.folds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=12)
    parser.add_argument("--scans", type=int, default=1500)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--voxels", type=int, default=1000)
    parser.add_argument("--phi-x", type=float, default=0.9)
    parser.add_argument("--phi-y", type=float, nargs="+", default=[0.5, 0.8])
    parser.add_argument("--snr", type=float, default=0.4)
    parser.add_argument("--gap", type=int, default=0, help="--cv-gap of the fits")
    parser.add_argument("--time-voxels", type=int, default=50000)
    parser.add_argument("--time-scans", type=int, default=2000)
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="skip the simulations; time the fit and the chosen test only",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{args.scans} scans, {args.features} AR(1) features (phi {args.phi_x}), gap {args.gap}, "
        f"{args.voxels} voxels, {args.sims} simulations, q = 0.05"
    )
    print(
        "| phi_y | test | null voxels p<0.05 | sims with any q<0.05 (complete null) "
        f"| power at q<0.05 (planted, SNR {args.snr:g}) | false discoveries among null voxels |"
    )
    print("|---|---|---|---|---|---|")
    base_phi_y = args.phi_y
    for phi_y in [] if args.time_only else base_phi_y:
        args.phi_y = phi_y
        fpr = {t: [] for t in TESTS}
        any_hit = {t: 0 for t in TESTS}
        power = {t: [] for t in TESTS}
        fdp = {t: [] for t in TESTS}
        for _ in range(args.sims):
            pred, y, folds = simulate(rng, args, args.voxels, 0)
            for name, test in TESTS.items():
                p = test(pred, y, folds)
                fpr[name].append(np.mean(p < 0.05))
                any_hit[name] += bool(np.any(fdr_bh(p) < 0.05))
        for _ in range(max(1, args.sims // 4)):
            n_planted = args.voxels // 5
            pred, y, folds = simulate(rng, args, args.voxels - n_planted, n_planted)
            planted = np.arange(args.voxels) >= args.voxels - n_planted
            for name, test in TESTS.items():
                sig = fdr_bh(test(pred, y, folds)) < 0.05
                power[name].append(sig[planted].mean())
                fdp[name].append(sig[~planted].sum() / max(1, sig.sum()))
        for name in TESTS:
            print(
                f"| {phi_y} | {name} | {np.mean(fpr[name]):.3f} | "
                f"{any_hit[name]}/{args.sims} | {np.mean(power[name]):.2f} | "
                f"{np.mean(fdp[name]):.3f} |"
            )
    # time on a whole-brain-sized layer
    args.phi_y = base_phi_y[-1]
    args.scans, n_vox = args.time_scans, args.time_voxels
    x = ar1(rng, args.scans, 768, args.phi_x)
    y = ar1(rng, args.scans, 1, args.phi_y) + ar1(rng, args.scans, n_vox, args.phi_y)
    y = y.astype(np.float32)
    t0 = time.perf_counter()
    res = cross_validated_scores(x, y, n_folds=5, return_predictions=True, centred_predictions=True)
    fit = time.perf_counter() - t0
    print(f"\nTime on {args.scans} scans x {n_vox} voxels, 768 features (one layer):")
    print(
        f"| step | seconds | ratio to the encoding fit |\n|---|---|---|\n"
        f"| encoding fit (peer) | {fit:.1f} | 1 |"
    )
    for name in list(TESTS)[:1] if args.time_only else TESTS:
        t0 = time.perf_counter()
        TESTS[name](res.predictions, y, res.folds)
        took = time.perf_counter() - t0
        print(f"| {name} | {took:.1f} | {took / fit:.2f} |")


if __name__ == "__main__":
    main()
