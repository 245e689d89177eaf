"""Self-contained HTML report of one participant (figures embedded as PNG).

The report covers every model whose maps are in the participant's folder (one section each), so
running the participant level with several models (or ``--random-init`` after the trained
model) into one OUTPUT_DIR gives one report comparing them.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import numpy as np

from bids_w2v.outputs.atomic import write_text
from bids_w2v.outputs.maps import read_sidecar
from bids_w2v.reports.figures import layer_profile_png
from bids_w2v.reports.html import (
    count_runs,
    count_stimuli,
    img_tag,
    kv_rows,
    methods_section,
    page,
    page_style,
)
from bids_w2v.reports.joint import joint_section
from bids_w2v.reports.surface_figures import (
    figure_html,
    is_surface_map,
    load_report_map,
    map_figure,
    report_map_files,
)

STYLE = page_style(1000)

MODEL_SECTION = """
<h2>Model {label}</h2>
<table>{summary}</table>
<h3>Brain score along the model's depth</h3>
{profile}
<p class="note">Mean Pearson r between predicted and held-out BOLD, over all voxels of the
brain mask and over each layer's best 10 % of voxels.</p>
<h3>Best brain score per voxel</h3>
{best}
<h3>Peak layer</h3>
{peak}
<p class="note">Layer of highest brain score (LayerIndex: {legend}), shown for the 10 % of
voxels with the highest best score (sequential colour map: shallow to deep).</p>
<h3>Scores per layer</h3>
<table><tr><th>layer</th><th>index</th><th>mean r</th><th>best 10 % mean r</th>
<th>voxels peaking here</th><th>significant voxels (q &lt; 0.05)</th></tr>{rows}</table>
"""


def data_summary(meta: dict) -> dict:
    """Runs, scans, stimuli and dropped volumes of a participant, from a map's sidecar."""
    sources = [str(s) for s in meta.get("Sources", [])]
    return {
        "Runs": count_runs(sources),
        "Scans": f"{meta.get('NumberOfScans')} (TR {meta.get('RepetitionTime')} s)",
        "Dropped volumes": meta.get("DroppedVolumes", "not recorded"),
        "Stimuli": count_stimuli(sources),
        "Confounds": ", ".join(meta.get("ConfoundsStrategy", [])) or "none",
    }


def _excluded_text(excluded: int | dict) -> str:
    """'N excluded (a non-finite, b constant)' from a sidecar's ``ExcludedVoxels``."""
    if isinstance(excluded, dict):
        nonfinite, constant = int(excluded.get("NonFinite", 0)), int(excluded.get("Constant", 0))
        return (
            f"{nonfinite + constant} excluded ({nonfinite} with NaN/Inf values, "
            f"{constant} constant)"
        )
    return f"{int(excluded)} excluded"


def _significant_voxels(r_file: Path) -> str:
    """Voxels at q < 0.05 of a layer (from its ``stat-rthresh`` sidecar), or why none."""
    thresh = Path(r_file).with_name(Path(r_file).name.replace("_stat-r_", "_stat-rthresh_"))
    try:
        meta = read_sidecar(thresh)
    except (OSError, ValueError):
        return "not tested (--no-participant-stats)"
    return str(meta.get("SignificantVoxels", "n/a"))


def _model_section(label: str, r_maps: list[tuple[dict, Path]], peak_file: Path) -> str:
    metas, files = [m for m, _ in r_maps], [f for _, f in r_maps]
    stack = np.stack([load_report_map(f) for f in files])  # NIfTI, GIfTI L+R, or CIFTI
    inside = np.isfinite(stack).any(axis=0)
    values = stack[:, inside]
    with np.errstate(invalid="ignore"):
        best = np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=0)
    best[~np.isfinite(best)] = np.nan
    top = best >= np.nanpercentile(best, 90) if np.isfinite(best).any() else best > 0
    peaks = load_report_map(peak_file)[inside]
    layers = [m["LayerName"] for m in metas]
    indices = [int(m["LayerIndex"]) for m in metas]
    means = [float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in values]
    tops = [
        float(np.mean(np.sort(v[np.isfinite(v)])[-max(1, v.size // 10) :]))
        if np.isfinite(v).any()
        else float("nan")
        for v in values
    ]
    best_img = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    best_img[inside] = best
    peak_img = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    peak_img[inside] = np.where(top, peaks, np.nan)
    vmax = float(np.nanmax(np.abs(best))) if np.isfinite(best).any() else 1.0
    meta = metas[0]
    weights = f"random init, seed {meta.get('Seed')}" if meta.get("RandomInit") else "pretrained"
    finite_means = np.where(np.isfinite(means), means, -np.inf)
    summary = {
        "Model": f"{meta.get('Model')} ({weights})",
        "Layers": f"{len(layers)} ({layers[0]} to {layers[-1]})",
        "Voxels": f"{int(inside.sum())} in the brain mask, "
        f"{_excluded_text(meta.get('ExcludedVoxels', 0))}",
        "Cross-validation": meta.get("CrossValidation", {}).get("Outer", "n/a"),
        "Best layer (mean r)": f"{layers[int(np.argmax(finite_means))]} "
        f"({np.max(finite_means):.3f})",
    }
    counts = [int(np.sum(peaks[top] == i)) for i in indices]
    significant = [_significant_voxels(f) for f in files]
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{i}</td><td>{m:.4f}</td><td>{t:.4f}</td>"
        f"<td>{c}</td><td>{s}</td></tr>"
        for n, i, m, t, c, s in zip(layers, indices, means, tops, counts, significant, strict=True)
    )
    return MODEL_SECTION.format(
        label=html.escape(label),
        summary=kv_rows(summary),
        profile=img_tag(layer_profile_png(layers, means, tops), "brain score per layer"),
        best=figure_html(
            map_figure(
                best_img,
                files[0],
                "best brain score (r)",
                cmap="cold_hot",
                vmin=-vmax,
                vmax=vmax or 1.0,
            ),
            "best brain score",
        ),
        peak=figure_html(
            map_figure(
                peak_img,
                files[0],
                "peak layer",
                cmap="viridis",
                vmin=min(indices),
                vmax=max(indices) if max(indices) > min(indices) else min(indices) + 1,
                ticks=list(zip(indices, layers, strict=True)),
            ),
            "peak layer",
        ),
        legend=html.escape(", ".join(f"{i} = {n}" for n, i in zip(layers, indices, strict=True))),
        rows=rows,
    )


def write_participant_report(output_dir: Path, subject: str, map_files: list[Path]) -> Path:
    """Write ``OUTPUT_DIR/sub-<label>.html`` from the participant's maps.

    Every model with maps in ``sub-<label>/func`` gets a section (``map_files`` are the maps
    just written; the other models' maps are read from the folder).

    Parameters
    ----------
    output_dir : Path
        Root of the derivative dataset.
    subject : str
        Subject label (without ``sub-``).
    map_files : list of Path
        The maps written by :func:`bids_w2v.outputs.maps.write_participant_maps`.

    Returns
    -------
    Path
        The report.
    """
    output_dir = Path(output_dir)
    surface = [Path(f) for f in map_files if is_surface_map(f)]
    if surface:  # a surface analysis: its own maps (GIfTI hemispheres joined, or CIFTI)
        files = set(report_map_files(surface))
    else:
        files = {Path(f) for f in map_files if str(f).endswith(".nii.gz")}
        files |= set((output_dir / f"sub-{subject}" / "func").glob("*_statmap.nii.gz"))
    by_model: dict[str, list[tuple[dict, Path]]] = defaultdict(list)
    peak_of: dict[str, Path] = {}
    for f in sorted(files):
        if "_stat-r_" not in f.name and "_stat-peaklayer_" not in f.name:
            continue
        meta = read_sidecar(f)
        label = meta.get("ModelLabel")
        if label is None:
            continue
        if "_stat-r_" in f.name:
            by_model[label].append((meta, f))
        else:
            peak_of[label] = f
    sections = []
    first_meta = None
    for label in sorted(by_model, key=lambda m: (bool(by_model[m][0][0].get("RandomInit")), m)):
        if label not in peak_of:
            continue
        pairs = sorted(by_model[label], key=lambda pair: pair[0]["LayerIndex"])
        first_meta = first_meta or pairs[0][0]
        sections.append(_model_section(label, pairs, peak_of[label]))
    citation = output_dir / "logs" / "CITATION.md"
    body = f"""<h1>bids-w2v report: sub-{html.escape(subject)}</h1>
<h2>Data</h2>
<table>{kv_rows(data_summary(first_meta or {}))}</table>
{"".join(sections)}
{joint_section(files)}
{methods_section(citation.read_text() if citation.exists() else "")}"""
    text = page(f"bids-w2v: sub-{subject}", STYLE, body)
    return write_text(output_dir / f"sub-{subject}.html", text)
