"""Self-contained HTML report of one participant (figures embedded as PNG)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.io.atomic import write_text
from bids_w2v.io.maps import read_sidecar
from bids_w2v.reports.figures import glass_brain_png, layer_profile_png

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bids-w2v: sub-{subject}</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .8em; border-bottom: 1px solid #eee;
text-align: left; }} img {{ max-width: 100%; }} .note {{ color: #555; font-size: .9em; }}
pre {{ white-space: pre-wrap; background: #f6f6f6; padding: 1em; }}
</style></head><body>
<h1>bids-w2v report: sub-{subject}</h1>
<h2>Summary</h2>
<table>{summary}</table>
<h2>Brain score along the model's depth</h2>
<img alt="brain score per layer" src="data:image/png;base64,{profile}">
<p class="note">Mean Pearson r between predicted and held-out BOLD, over all voxels of the
brain mask and over each layer's best 10 % of voxels.</p>
<h2>Best brain score per voxel</h2>
<img alt="best brain score" src="data:image/png;base64,{best}">
<h2>Peak layer</h2>
<img alt="peak layer" src="data:image/png;base64,{peak}">
<p class="note">Layer of highest brain score (LayerIndex: {legend}), shown for the 10 % of
voxels with the highest best score.</p>
<h2>Scores per layer</h2>
<table><tr><th>layer</th><th>index</th><th>mean r</th><th>best 10 % mean r</th>
<th>voxels peaking here</th></tr>{rows}</table>
<h2>Methods</h2>
<pre>{methods}</pre>
</body></html>
"""


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def write_participant_report(output_dir: Path, subject: str, map_files: list[Path]) -> Path:
    """Write ``OUTPUT_DIR/sub-<label>.html`` from the participant's maps.

    Parameters
    ----------
    output_dir : Path
        Root of the derivative dataset.
    subject : str
        Subject label (without ``sub-``).
    map_files : list of Path
        The maps written by :func:`bids_w2v.io.maps.write_participant_maps`.

    Returns
    -------
    Path
        The report.
    """
    pairs = sorted(
        ((read_sidecar(f), Path(f)) for f in map_files if "_stat-r_" in Path(f).name),
        key=lambda pair: pair[0]["LayerIndex"],
    )
    metas, r_maps = [m for m, _ in pairs], [f for _, f in pairs]
    peak_file = next(Path(f) for f in map_files if "_stat-peaklayer_" in Path(f).name)
    stack = np.stack([np.asarray(nb.load(str(f)).dataobj, dtype=np.float64) for f in r_maps])
    inside = np.isfinite(stack).any(axis=0)
    values = np.where(np.isfinite(stack), stack, np.nan)[:, inside]
    best = np.nanmax(values, axis=0)
    top = best >= np.nanpercentile(best, 90)
    peaks = np.asarray(nb.load(str(peak_file)).dataobj, dtype=np.float64)[inside]
    layers = [m["LayerName"] for m in metas]
    indices = [int(m["LayerIndex"]) for m in metas]
    means = [float(np.nanmean(v)) for v in values]
    tops = [float(np.nanmean(np.sort(v[np.isfinite(v)])[-max(1, v.size // 10) :])) for v in values]

    ref = nb.load(str(r_maps[0]))
    best_img = np.full(ref.shape, np.nan, dtype=np.float32)
    best_img[inside] = best
    peak_img = np.full(ref.shape, np.nan, dtype=np.float32)
    peak_img[inside] = np.where(top, peaks, np.nan)
    vmax = float(np.nanmax(np.abs(best))) or 1.0
    meta = metas[0]
    weights = f"random init, seed {meta.get('Seed')}" if meta["RandomInit"] else "pretrained"
    excluded = meta.get("ExcludedVoxels", 0)
    summary = {
        "Model": f"{meta['Model']} ({weights})",
        "Layers": f"{len(layers)} ({layers[0]} to {layers[-1]})",
        "Voxels": f"{int(inside.sum())} in the brain mask, {excluded} excluded",
        "Scans": f"{meta.get('NumberOfScans')} (TR {meta.get('RepetitionTime')} s)",
        "Cross-validation": meta["CrossValidation"]["Outer"],
        "Best layer (mean r)": f"{layers[int(np.argmax(means))]} ({max(means):.3f})",
    }
    counts = [int(np.sum(peaks[top] == i)) for i in indices]
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{i}</td><td>{m:.4f}</td><td>{t:.4f}</td>"
        f"<td>{c}</td></tr>"
        for n, i, m, t, c in zip(layers, indices, means, tops, counts, strict=True)
    )
    citation = Path(output_dir) / "logs" / "CITATION.md"
    text = TEMPLATE.format(
        subject=html.escape(subject),
        summary="".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        ),
        profile=_b64(layer_profile_png(layers, means, tops)),
        best=_b64(
            glass_brain_png(
                nb.Nifti1Image(best_img, ref.affine),
                "best brain score (r)",
                cmap="cold_hot",
                vmin=-vmax,
                vmax=vmax,
            )
        ),
        peak=_b64(
            glass_brain_png(
                nb.Nifti1Image(peak_img, ref.affine),
                "peak layer",
                cmap="viridis",
                vmin=min(indices),
                vmax=max(indices),
            )
        ),
        legend=html.escape(", ".join(f"{i} = {n}" for n, i in zip(layers, indices, strict=True))),
        rows=rows,
        methods=html.escape(citation.read_text()) if citation.exists() else "",
    )
    return write_text(Path(output_dir) / f"sub-{subject}.html", text)
