"""Group level at Narratives' scale: time and peak memory with 300 simulated participants.

Two measurements, each in a fresh worker process (peak resident memory from ``VmHWM``):

* ``maps``: :func:`bids_w2v.group.maps.write_group_maps` on participant maps written by
  bids-w2v's own writer (``bids_w2v.testing.group_maps.write_maps``: 4 layers) on a volume of
  81,928 voxels (the 81,924 vertices of fsaverage6 rounded to a box), with the Wilcoxon test
  and with the sign-flip permutation test;
* ``ceiling``: the noise ceiling's second pass as :func:`bids_w2v.group.noise_ceiling.
  write_noise_ceiling` runs it: running sum of every participant's cleaned BOLD (pass 1), then
  one participant at a time against the mean of the others, by the ``paper`` and
  ``voxelwise`` methods. Participants' BOLD is regenerated from a seed instead of being read
  from the scratch folder (no 10 GB of disk), which leaves out the reading time.

Ratios are to the ``voxelwise`` ceiling and to the Wilcoxon maps, measured in the same run.

Usage: python benchmarks/group_scale.py [--subjects 300] [--voxels 81928] [--scans 300]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bold(seed: int, shared: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (shared + rng.standard_normal(shared.shape, dtype=np.float32)).astype(np.float32)


def run_ceiling(method: str, n_subjects: int, n_scans: int, n_voxels: int, queue) -> None:
    from bids_w2v.encoding.folds import make_folds
    from bids_w2v.group.ceiling import crossval_ceiling, paper_ceiling

    shared = np.random.default_rng(0).standard_normal((n_scans, n_voxels), dtype=np.float32)
    t0 = time.perf_counter()
    total = np.zeros((n_scans, n_voxels))
    for s in range(n_subjects):  # pass 1: running sum
        total += bold(s + 1, shared)
    mean_ceiling = np.zeros(n_voxels)
    folds = make_folds(n_scans, n_folds=5)
    for s in range(n_subjects):  # pass 2: one participant in memory
        y = bold(s + 1, shared).astype(np.float64)
        x = (total - y) / (n_subjects - 1)
        c = paper_ceiling(y, x) if method == "paper" else crossval_ceiling(y, x, folds)
        mean_ceiling += c / n_subjects
    queue.put((time.perf_counter() - t0, peak_rss_mib(), float(mean_ceiling.mean())))


def run_maps(test: str, out: str, queue) -> None:
    from bids_w2v.group.collection import collect_participant_maps
    from bids_w2v.group.maps import write_group_maps
    from bids_w2v.group.significance import GroupTest
    from bids_w2v.testing.group_maps import SPACE

    found = collect_participant_maps(Path(out), None, SPACE, None)
    t0 = time.perf_counter()
    write_group_maps(
        found["tiny"],
        output_dir=Path(out),
        task="listen",
        space=SPACE,
        res=None,
        model_label="tiny",
        group_test=GroupTest(test, n_permutations=1000, seed=0),
    )
    queue.put((time.perf_counter() - t0, peak_rss_mib(), None))


def in_worker(target, *args):
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--voxels", type=int, default=81928)
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--skip-maps", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    args = parser.parse_args()
    print(f"{args.subjects} participants, {args.voxels} voxels")
    if not args.skip_ceiling:
        print(f"\nNoise ceiling, {args.scans} scans per participant:")
        print("| method | seconds | per participant | peak MiB | time ratio to voxelwise |")
        print("|---|---|---|---|---|")
        rows = {
            m: in_worker(run_ceiling, m, args.subjects, args.scans, args.voxels)
            for m in ("voxelwise", "paper")
        }
        for m, (t, mem, _) in rows.items():
            ratio = t / rows["voxelwise"][0]
            print(f"| {m} | {t:.0f} | {t / args.subjects:.2f} | {mem:.0f} | {ratio:.1f} |")
    if not args.skip_maps:
        from bids_w2v.testing.group_maps import write_maps

        with tempfile.TemporaryDirectory() as tmp:
            shape = (44, 49, 38) if args.voxels == 81928 else (args.voxels, 1, 1)
            t0 = time.perf_counter()
            write_maps(
                Path(tmp),
                subjects=tuple(f"{i:03d}" for i in range(1, args.subjects + 1)),
                models=(("tiny", False, 0.1),),
                shape=shape,
            )
            took = time.perf_counter() - t0
            print(f"\nGroup maps (4 layers; participant maps written in {took:.0f} s):")
            print("| test | seconds | peak MiB | time ratio to wilcoxon |")
            print("|---|---|---|---|")
            rows = {}
            for t in ("wilcoxon", "permutation"):
                rows[t] = sec, mem, _ = in_worker(run_maps, t, tmp)
                print(
                    f"| {t} | {sec:.0f} | {mem:.0f} | {sec / rows['wilcoxon'][0]:.1f} |", flush=True
                )


if __name__ == "__main__":
    main()
