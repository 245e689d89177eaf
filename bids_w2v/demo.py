"""``make demo``: simulate a small dataset, run participant and group levels, show recovery.

Usage: ``python -m bids_w2v.demo [FOLDER]`` (default ``./demo_out``). Uses the random-init
wav2vec2-base (config shipped with bids-w2v: no download) on real recorded speech shipped in the
package; planted voxels follow known layers at realistic signal levels (brain scores of about
0.1-0.3); the table compares planted and recovered layers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from bids_w2v.outputs.maps import read_sidecar


def recovery_table(dataset: Path, output_dir: Path, truth: pd.DataFrame) -> pd.DataFrame:
    """Planted vs recovered peak layer and brain scores, per participant and planted layer.

    Parameters
    ----------
    dataset : Path
        The simulated dataset (for its subjects).
    output_dir : Path
        bids-w2v outputs.
    truth : DataFrame
        Planted voxels (``i, j, k, layer``).

    Returns
    -------
    DataFrame
        One row per participant and planted layer, plus a ``null`` row of unplanted voxels.
    """
    rows = []
    for func in sorted(output_dir.glob("sub-*/func")):
        sub = func.parent.name
        peak_file = next(func.glob("*_stat-peaklayer_statmap.nii.gz"))
        peak = np.asarray(nb.load(peak_file).dataobj)
        scores, index_of = {}, {}
        for f in func.glob("*_stat-r_statmap.nii.gz"):
            meta = read_sidecar(f)
            scores[meta["LayerName"]] = np.asarray(nb.load(f).dataobj)
            index_of[meta["LayerName"]] = int(meta["LayerIndex"])
        best = np.nanmax(np.stack(list(scores.values())), axis=0)
        n_conv = sum(name.startswith("conv") for name in index_of)
        null = np.isfinite(peak)
        for layer, group in truth.groupby("layer", sort=False):
            ijk = tuple(group[["i", "j", "k"]].to_numpy().T)
            null[ijk] = False
            rows.append(
                {
                    "participant": sub,
                    "planted": layer,
                    "planted_index": index_of[layer],
                    "voxels": len(group),
                    "recovered_median": float(np.median(peak[ijk])),
                    "exact": float(np.mean(peak[ijk] == index_of[layer])),
                    "within_1": float(np.mean(np.abs(peak[ijk] - index_of[layer]) <= 1)),
                    "same_block": float(
                        np.mean((peak[ijk] >= n_conv) == (index_of[layer] >= n_conv))
                    ),
                    "r_planted_layer": float(np.mean(scores[layer][ijk])),
                    "r_best": float(np.mean(best[ijk])),
                }
            )
        rows.append(
            {
                "participant": sub,
                "planted": "none (null)",
                "planted_index": -1,
                "voxels": int(null.sum()),
                "recovered_median": float("nan"),
                "exact": float("nan"),
                "within_1": float("nan"),
                "same_block": float("nan"),
                "r_planted_layer": float("nan"),
                "r_best": float(np.mean(best[null])),
            }
        )
    return pd.DataFrame(rows)


def planted_atlas(dataset: Path, truth: pd.DataFrame, path: Path) -> Path:
    """A label image of the planted voxels (one region per planted layer) with its names TSV.

    Parameters
    ----------
    dataset : Path
        The simulated dataset (its brain mask gives the grid).
    truth : DataFrame
        Planted voxels (``i, j, k, layer``).
    path : Path
        Where to write the label NIfTI (the TSV goes beside it).

    Returns
    -------
    Path
        ``path``.
    """
    mask = nb.load(next((dataset / "derivatives" / "fmriprep").rglob("*_desc-brain_mask.nii.gz")))
    labels = np.zeros(mask.shape[:3], np.int16)
    names = []
    for value, (layer, group) in enumerate(truth.groupby("layer", sort=False), start=1):
        labels[tuple(group[["i", "j", "k"]].to_numpy().T)] = value
        names.append(f"{value}\tplanted-{layer}\n")
    nb.save(nb.Nifti1Image(labels, mask.affine), path)
    path.with_name(path.name.replace(".nii.gz", ".tsv")).write_text(
        "index\tname\n" + "".join(names)
    )
    return path


def roi_hierarchy(output_dir: Path) -> pd.DataFrame:
    """Per planted region: best layer of the group mean and the most frequent peak layer."""
    rows = []
    for path in sorted(output_dir.glob("task-*_stat-roi_summary.tsv")):
        table = pd.read_csv(path, sep="\t", na_values="n/a")
        for roi, group in table[table.roi.str.startswith("planted-")].groupby("roi", sort=False):
            best = group.loc[group["mean"].idxmax()]
            top = group.loc[group["percent_peak"].idxmax()]
            rows.append(
                {
                    "model": best["model"],
                    "region": roi,
                    "best layer": best["layer"],
                    "mean r": best["mean"],
                    "most voxels peak at": top["layer"],
                    "% voxels": top["percent_peak"],
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bids_w2v.demo", description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("demo_out"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--model", default="facebook/wav2vec2-base")
    args = parser.parse_args(argv)

    from bids_w2v.cli.run import prepare_environment

    prepare_environment(allow_download=False)
    from bids_w2v.cli.run import main as bids_w2v_main
    from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset

    folder = args.folder.absolute()
    shutil.rmtree(folder, ignore_errors=True)
    dataset, output, work = (
        folder / "ds",
        folder / "ds" / "derivatives" / "bids-w2v",
        folder / "work",
    )
    started = time.time()
    spec = SimulationSpec(model=args.model, random_init=True)
    print(
        f"[demo] simulating a dataset in {dataset} (planted layers: "
        f"{', '.join(f'{n} x{c}' for n, c in spec.planted)}) ...",
        flush=True,
    )
    truth = simulate_dataset(dataset, spec)
    print(
        f"[demo] done in {time.time() - started:.0f} s (ground truth computed independently "
        "of the analysis: transformers hidden states, nilearn HRF at mid-TR, AR(1) noise, "
        f"signal SD {spec.snr} x the noise's)",
        flush=True,
    )
    common = ["--model", args.model, "--random-init", "-w", str(work)]
    atlas = planted_atlas(dataset, truth, folder / "planted_dseg.nii.gz")
    for level, extra in (
        ("participant", ["--nprocs", str(args.nprocs)]),
        ("group", ["--roi-atlas", str(atlas)]),
    ):
        cmd = [str(dataset), str(output), level, *common, *extra]
        print(f"[demo] $ bids-w2v {' '.join(cmd)}", flush=True)
        code = bids_w2v_main(cmd)
        if code:
            return code
    table = recovery_table(dataset, output, truth)
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(
            "\n[demo] planted layer vs recovered peak layer (LayerIndex: conv0-6 = 0-6, "
            "transformer0-11 = 7-18)"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    planted = table[table.planted_index >= 0]
    null = table[table.planted_index < 0]
    print(
        f"\n[demo] planted voxels: mean brain score {planted.r_best.mean():.3f} vs "
        f"{null.r_best.mean():.3f} for null voxels; peak in the planted block type (conv vs "
        f"transformer) for {planted.same_block.mean():.0%} of planted voxels.\n"
        "[demo] exact: share of voxels whose peak layer is the planted one; within_1: within "
        "one layer. The blocks of an untrained\n"
        "       transformer carry nearly the same representation, so the peak among them is "
        "poorly identified: what the paper's random-init baseline shows too."
    )
    hierarchy = roi_hierarchy(output)
    if len(hierarchy):
        print(
            "\n[demo] group level: each planted region's best layer (mean r over participants) "
            "and the layer where most of its voxels peak (group report: "
            f"{output / 'group.html'})"
        )
        print(hierarchy.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    reports = ", ".join(str(p) for p in sorted(output.glob("*.html")))
    print(f"\n[demo] finished in {time.time() - started:.0f} s; outputs in {output}")
    print(f"[demo] HTML reports: {reports}; methods: {output / 'logs' / 'CITATION.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
