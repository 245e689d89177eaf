"""Group-level tests on simulated brain-score maps: false-positive rates and power.

``--group-test wilcoxon`` (the paper's: two-sided Wilcoxon signed-rank, Benjamini-Hochberg FDR
over voxels) and ``--group-test permutation`` (two-sided sign-flip permutation of the one-sample
t, max-statistic FWE), both through :func:`bids_w2v.group.significance.significance_maps` as the
group level calls them, at level 0.05.

Null: every voxel's participant scores are symmetric around 0 (Gaussian, or heavy-tailed
Student t with 3 degrees of freedom), independent across voxels or smoothed along the voxel
axis (neighbouring voxels correlated). Reported: the share of simulations with any voxel
declared significant (the family-wise rate, which FDR also controls under the complete null;
nominal <= 0.05) and the share of null voxels below the uncorrected p = 0.05 where the test
gives uncorrected p-values. Power: 10 % of the voxels get a mean effect of ``--effect``
standard deviations; the share of them found, and the false discovery proportion.

Usage: python benchmarks/group_statistics.py [--sims 100] [--subjects 20] [--voxels 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import gaussian_filter1d

from bids_w2v.group.significance import GroupTest, significance_maps


def simulate(rng, args, smooth, tails):
    shape = (args.subjects, args.voxels)
    x = rng.standard_t(3, shape) / np.sqrt(3) if tails else rng.standard_normal(shape)
    if smooth:
        x = gaussian_filter1d(x, 3, axis=1)
        x /= x.std()
    return 0.02 * x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--voxels", type=int, default=2000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--effect", type=float, default=0.8)
    args = parser.parse_args()
    tests = {
        "wilcoxon + BH-FDR": GroupTest("wilcoxon"),
        "sign-flip permutation, max-t FWE": GroupTest("permutation", args.permutations, 0),
    }
    rng = np.random.default_rng(0)
    print(
        f"{args.subjects} participants, {args.voxels} voxels, {args.sims} simulations, level 0.05"
    )
    print(
        "| null | test | sims with any significant voxel | null voxels p<0.05 (uncorrected) "
        "| power (planted 10 %) | false discovery proportion | seconds per map |"
    )
    print("|---|---|---|---|---|---|---|")
    for smooth, tails, label in [
        (False, False, "Gaussian, independent voxels"),
        (True, False, "Gaussian, smooth"),
        (False, True, "Student t(3), independent voxels"),
    ]:
        for name, test in tests.items():
            hits, unc, power, fdp, took = 0, [], [], [], 0.0
            for sim in range(args.sims):
                null = simulate(rng, args, smooth, tails)
                t0 = time.perf_counter()
                sig = significance_maps(
                    null, 0.05, [], "sim", GroupTest(test.test, test.n_permutations, sim)
                )
                took += time.perf_counter() - t0
                hits += bool(np.any(sig.corrected < 0.05))
                if test.test == "wilcoxon":
                    unc.append(np.mean(sig.maps[0][1] < 0.05))
                if sim < max(1, args.sims // 5):
                    data = simulate(rng, args, smooth, tails)
                    planted = np.arange(args.voxels) < args.voxels // 10
                    data[:, planted] += args.effect * 0.02
                    found = significance_maps(data, 0.05, [], "sim", test).corrected < 0.05
                    power.append(found[planted].mean())
                    fdp.append(found[~planted].sum() / max(1, found.sum()))
            print(
                f"| {label} | {name} | {hits}/{args.sims} | "
                f"{np.mean(unc) if unc else float('nan'):.3f} | {np.mean(power):.2f} | "
                f"{np.mean(fdp):.3f} | {took / args.sims:.2f} |"
            )


if __name__ == "__main__":
    main()
