"""``make demo``: simulate a small dataset, run participant and group levels, show recovery.

Usage: ``python -m bids_w2v.demo [FOLDER]`` (default ``./demo_out``). Uses the random-init
wav2vec2-base (config shipped with bids-w2v: no download) on real recorded speech shipped in the
package; planted voxels follow known layers; the table compares planted and recovered layers.
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

from bids_w2v.io.maps import read_sidecar


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


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bids_w2v.demo", description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("demo_out"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--model", default="facebook/wav2vec2-base")
    args = parser.parse_args(argv)

    from bids_w2v.cli.run import _prepare_environment

    _prepare_environment(allow_download=False)
    from bids_w2v.cli.run import main as bids_w2v_main
    from bids_w2v.simulate import SimulationSpec, simulate_dataset

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
    truth = simulate_dataset(dataset, spec, cache_dir=work / "feature_cache")
    print(
        f"[demo] done in {time.time() - started:.0f} s (features of every layer extracted "
        f"once, into the pipeline's cache {work / 'feature_cache'})",
        flush=True,
    )
    common = ["--model", args.model, "--random-init", "-w", str(work)]
    for level, extra in (("participant", ["--nprocs", str(args.nprocs)]), ("group", [])):
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
    reports = ", ".join(str(p) for p in sorted(output.glob("sub-*.html")))
    print(f"\n[demo] finished in {time.time() - started:.0f} s; outputs in {output}")
    print(f"[demo] HTML reports: {reports}; methods: {output / 'logs' / 'CITATION.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
