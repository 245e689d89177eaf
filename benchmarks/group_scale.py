"""Group level at Narratives' scale: time and peak memory with 300 simulated participants.

Two measurements on files on disk, each in a fresh worker process (peak resident memory from
``VmHWM``):

* ``maps``: :func:`bids_w2v.group.maps.write_group_maps` on participant maps written by
  bids-w2v's own writer (``bids_w2v.testing.group_maps.write_maps``: 4 layers), with the
  Wilcoxon test and with the sign-flip permutation test; the group maps read one layer at a
  time;
* ``ceiling``: the real :func:`bids_w2v.group.noise_ceiling.write_noise_ceiling` (``paper`` and
  ``voxelwise`` methods) on a BIDS dataset with fMRIPrep-like derivatives written here: every
  participant hears the same run (one stimulus), BOLD = a shared signal + noise, fMRIPrep-like
  confounds. It cleans each participant's BOLD to the scratch folder, keeps a running sum of
  the run, then predicts each participant from the mean of the others, one in memory at a time.

Sizes are chosen to fit the time; time per participant and memory are extrapolated to
81,924 vertices in benchmarks/README.md (labelled as such). Ratios are to the ``voxelwise``
ceiling and to the Wilcoxon maps, measured in the same run.

Usage: python benchmarks/group_scale.py [--subjects 300] [--voxels 20000] [--scans 150]
       [--ceiling-voxels 5000] [--skip-maps] [--skip-ceiling]
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


def write_dataset(root: Path, subjects: list[str], n_scans: int, shape: tuple) -> Path:
    """A BIDS dataset + fMRIPrep-like derivatives: one run per participant, same stimulus."""
    import json

    import nibabel as nb
    import pandas as pd
    import soundfile as sf

    from bids_w2v.testing.group_maps import SPACE
    from bids_w2v.testing.simulator import MOTION

    def dump(path: Path, data: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    fmriprep = root / "derivatives" / "fmriprep"
    dump(root / "dataset_description.json", {"Name": "scale", "BIDSVersion": "1.10.0"})
    dump(
        fmriprep / "dataset_description.json",
        {
            "Name": "fMRIPrep-like",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.1.0"}],
        },
    )
    dump(root / "task-listen_bold.json", {"TaskName": "listen", "RepetitionTime": 1.0})
    (root / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in subjects)
    )
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    length = n_scans - 4  # the story plays from 2 s to 2 s before the end
    sf.write(root / "stimuli" / "story.wav", np.zeros(16000 * length, np.float32), 16000)
    rng = np.random.default_rng(0)
    n_vox = int(np.prod(shape))
    shared = rng.standard_normal((n_scans, n_vox)).astype(np.float32)
    mask = nb.Nifti1Image(np.ones(shape, np.uint8), np.eye(4))
    t = np.arange(n_scans)
    for sub in subjects:
        stem = f"sub-{sub}_task-listen"
        data = 1000 + 10 * (shared + rng.standard_normal((n_scans, n_vox), dtype=np.float32))
        img = nb.Nifti1Image(data.T.reshape(shape + (n_scans,)).astype(np.float32), np.eye(4))
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = 1.0
        dfunc, func = fmriprep / f"sub-{sub}" / "func", root / f"sub-{sub}" / "func"
        dfunc.mkdir(parents=True, exist_ok=True)
        func.mkdir(parents=True, exist_ok=True)
        prefix = f"{stem}_space-{SPACE}"
        img.to_filename(dfunc / f"{prefix}_desc-preproc_bold.nii.gz")
        (func / f"{stem}_bold.nii.gz").symlink_to(dfunc / f"{prefix}_desc-preproc_bold.nii.gz")
        dump(dfunc / f"{prefix}_desc-preproc_bold.json", {"RepetitionTime": 1.0})
        mask.to_filename(dfunc / f"{prefix}_desc-brain_mask.nii.gz")
        pd.DataFrame(
            {
                "onset": [2.0],
                "duration": [float(length)],
                "trial_type": ["speech"],
                "stim_file": ["story.wav"],
            }
        ).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
        conf = {c: 0.05 * rng.standard_normal(n_scans) for c in MOTION}
        for c in ("white_matter", "csf", "global_signal"):
            conf[c] = rng.standard_normal(n_scans)
        for c in list(conf):
            conf[f"{c}_derivative1"] = np.r_[np.nan, np.diff(conf[c])]
            conf[f"{c}_power2"] = conf[c] ** 2
            conf[f"{c}_derivative1_power2"] = conf[f"{c}_derivative1"] ** 2
        conf["framewise_displacement"] = np.r_[np.nan, np.abs(np.diff(conf["trans_x"]))]
        for k in range(1, int(np.floor(2 * n_scans / 128.0)) + 1):
            conf[f"cosine{k - 1:02d}"] = np.sqrt(2.0 / n_scans) * np.cos(
                np.pi * (2 * t + 1) * k / (2 * n_scans)
            )
        table = pd.DataFrame(conf)
        table.to_csv(
            dfunc / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a"
        )
        dump(dfunc / f"{stem}_desc-confounds_timeseries.json", {c: {} for c in table.columns})
    return fmriprep


def run_ceiling(method: str, root: str, queue) -> None:
    from bids_w2v.config import CleaningSettings, EncodingSettings, InputSettings
    from bids_w2v.group.collection import collect_participant_maps
    from bids_w2v.group.noise_ceiling import write_noise_ceiling
    from bids_w2v.testing.group_maps import SPACE

    root_path = Path(root)
    out = root_path / f"out-{method}"
    found = collect_participant_maps(root_path / "maps", None, SPACE, None)
    t0 = time.perf_counter()
    files, notes = write_noise_ceiling(
        found,
        bids_dir=root_path / "bids",
        fmriprep_dir=root_path / "bids" / "derivatives" / "fmriprep",
        output_dir=out,
        scratch_dir=root_path / f"scratch-{method}",
        task="listen",
        space=SPACE,
        res=None,
        inputs=InputSettings(),
        cleaning=CleaningSettings(),
        encoding=EncodingSettings(),
        method=method,
    )
    took = time.perf_counter() - t0
    import shutil

    shutil.rmtree(root_path / f"scratch-{method}", ignore_errors=True)
    queue.put((took, peak_rss_mib(), len(files)))


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
    import queue as queues

    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except queues.Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--voxels", type=int, default=20000, help="voxels of the group maps")
    parser.add_argument("--scans", type=int, default=150)
    parser.add_argument("--ceiling-voxels", type=int, default=5000)
    parser.add_argument("--skip-maps", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--tmp", default=None, help="folder for the data (default: system temp)")
    args = parser.parse_args()
    from bids_w2v.testing.group_maps import write_maps

    subjects = [f"{i:03d}" for i in range(1, args.subjects + 1)]
    print(f"{args.subjects} participants", flush=True)
    if not args.skip_ceiling:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            shape = (args.ceiling_voxels, 1, 1)
            t0 = time.perf_counter()
            write_dataset(Path(tmp) / "bids", subjects, args.scans, shape)
            write_maps(
                Path(tmp) / "maps",
                subjects=tuple(subjects),
                models=(("tiny", False, 0.1),),
                shape=shape,
            )
            took = time.perf_counter() - t0
            print(
                f"\nNoise ceiling (write_noise_ceiling), {args.scans} scans x "
                f"{args.ceiling_voxels} voxels per participant (data written in {took:.0f} s):"
            )
            print("| method | seconds | per participant | peak MiB | time ratio to voxelwise |")
            print("|---|---|---|---|---|")
            rows = {}
            for m in ("voxelwise", "paper"):
                rows[m] = t, mem, n = in_worker(run_ceiling, m, tmp)
                ratio = t / rows["voxelwise"][0]
                print(
                    f"| {m} | {t:.0f} | {t / args.subjects:.2f} | {mem:.0f} | {ratio:.1f} |",
                    flush=True,
                )
    if not args.skip_maps:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            shape = (44, 49, 38) if args.voxels == 81928 else (args.voxels, 1, 1)
            t0 = time.perf_counter()
            write_maps(
                Path(tmp),
                subjects=tuple(subjects),
                models=(("tiny", False, 0.1),),
                shape=shape,
            )
            took = time.perf_counter() - t0
            print(
                f"\nGroup maps, {args.voxels} voxels (4 layers; participant maps written in "
                f"{took:.0f} s):"
            )
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
