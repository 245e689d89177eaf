"""Self-contained HTML report of the group level (figures embedded as PNG), from the outputs."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from bids_w2v.group.collection import find_group_map, load_map, table_path
from bids_w2v.outputs.atomic import write_text
from bids_w2v.outputs.names import layer_desc, task_label
from bids_w2v.reports import figures
from bids_w2v.reports.boilerplate import group_methods_boilerplate
from bids_w2v.reports.group_sections import (
    ceiling_method,
    ceiling_section,
    comparison_section,
    output_sidecar,
    read_tsv,
)
from bids_w2v.reports.html import (
    count_runs,
    count_stimuli,
    frame_table,
    img_tag,
    kv_table,
    methods_section,
    page,
    page_style,
)
from bids_w2v.reports.joint import joint_section
from bids_w2v.reports.surface_figures import figure_html, is_surface_map, map_figure
from bids_w2v.spaces import space_for

STYLE = page_style(
    1100, "table { margin: .5em 0; } .warn { color: #8a4b00; }\nnav a { margin-right: 1em; }"
)


def data_summary(
    output_dir: Path, task: str, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Runs, scans, tasks and stimuli of each participant, from their maps' sidecars.

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task : str
        Task label.
    labels : mapping, optional
        ``sub-<label>`` -> the task label of its maps, when participants heard different
        stories (default: ``task`` for everyone).

    Returns
    -------
    DataFrame
        One row per participant and model.
    """
    rows = []
    for sidecar in sorted(Path(output_dir).glob("sub-*/func/sub-*_task-*_stat-r_statmap.json")):
        sub = sidecar.name.split("_")[0]
        if f"_task-{(labels or {}).get(sub, task)}_" not in sidecar.name:
            continue
        meta = json.loads(sidecar.read_text())
        if "ModelLabel" not in meta:
            continue
        key = (sub, meta["ModelLabel"])
        if any((r["participant"], r["model"]) == key for r in rows):
            continue
        sources = [str(s) for s in meta.get("Sources", [])]
        rows.append(
            {
                "participant": sub,
                "model": meta["ModelLabel"],
                "tasks": ", ".join(meta.get("Tasks", [])) or "n/a",
                "runs": count_runs(sources),
                "scans": meta.get("NumberOfScans", "n/a"),
                "dropped volumes": meta.get("DroppedVolumes", "n/a"),
                "stimuli": count_stimuli(sources),
                "TR (s)": meta.get("RepetitionTime", "n/a"),
            }
        )
    return pd.DataFrame(rows)


def _models(output_dir: Path, common: dict) -> list[str]:
    """Model labels with a group ROI table, in the order of their ``ModelOrder`` (else name)."""
    pattern = table_path(output_dir, desc="MODEL", stat="roi", **common).name
    prefix, suffix = pattern.split("MODEL")
    labels = [
        p.name[len(prefix) : -len(suffix)] for p in Path(output_dir).glob(prefix + "*" + suffix)
    ]
    randomness = {}
    for label in labels:
        meta = output_sidecar(table_path(output_dir, desc=label, stat="roi", **common))
        randomness[label] = bool(meta.get("RandomInit", False))
    return sorted(labels, key=lambda m: (randomness[m], m))


def _model_section(output_dir: Path, model: str, common: dict) -> tuple[str, dict]:
    """HTML of one model: curves per ROI, peak distribution, peak-layer map, maps per layer."""
    roi_file = table_path(output_dir, desc=model, stat="roi", **common)
    roi = read_tsv(roi_file)
    meta = output_sidecar(roi_file)
    layers = list(dict.fromkeys(roi.sort_values("layer_index")["layer"]))
    indices = list(dict.fromkeys(roi.sort_values("layer_index")["layer_index"]))
    parts = [f'<h2 id="model-{html.escape(model)}">Model {html.escape(model)}</h2>']
    weights = "random init" if meta.get("RandomInit") else "pretrained"
    parts.append(
        f"<p>{html.escape(str(meta.get('Model', model)))} ({weights}); "
        f"{meta.get('NumberOfSubjects', '?')} participant(s).</p>"
    )
    for note in meta.get("Notes", []):
        parts.append(f'<p class="warn">{html.escape(note)}</p>')

    curves = []
    for name, group in roi.groupby("roi", sort=False):
        group = group.sort_values("layer_index")
        curves.append((str(name), list(group["layer"]), list(group["mean"]), list(group["sem"])))
    parts.append("<h3>Brain score along depth, per region</h3>")
    parts.append(img_tag(figures.layer_curves_png(curves), f"score by layer per region, {model}"))
    parts.append(
        '<p class="note">Mean over participants of each participant\'s mean score in '
        "the region; error bars: standard error across participants.</p>"
    )
    rows = []
    for name, group in roi.groupby("roi", sort=False):
        finite = group[group["mean"].notna()]
        best = finite.loc[finite["mean"].idxmax()] if len(finite) else None
        share = group[group["percent_peak"].notna()]
        top = share.loc[share["percent_peak"].idxmax()] if len(share) else None
        rows.append(
            {
                "region": name,
                "voxels": int(group["n_voxels"].iloc[0]),
                "participants": int(group["n_subjects"].max()),
                "best layer (mean r)": best["layer"] if best is not None else "n/a",
                "mean r": float(best["mean"]) if best is not None else np.nan,
                "s.e.m.": float(best["sem"]) if best is not None else np.nan,
                "most frequent peak layer": top["layer"] if top is not None else "n/a",
                "% voxels peaking there": float(top["percent_peak"]) if top is not None else np.nan,
            }
        )
    summary = pd.DataFrame(rows)
    parts.append(frame_table(summary))

    peaks_file = table_path(output_dir, desc=model, stat="peaklayer", **common)
    if peaks_file.exists():
        peaks = read_tsv(peaks_file)
        table = peaks.pivot(index="participant_id", columns="layer", values="percent")
        table = table[[c for c in layers if c in table.columns]]
        parts.append("<h3>Per-participant peak layers</h3>")
        parts.append(
            img_tag(
                figures.peak_distribution_png(
                    list(table.columns), table.to_numpy(), list(table.index)
                ),
                f"distribution of peak layers, {model}",
            )
        )
        parts.append(
            '<p class="note">Percent of each participant\'s voxels whose best layer is '
            "each layer (grey: one line per participant).</p>"
        )

    circ = find_group_map(output_dir, desc=layer_desc(model), stat="circpeaklayer", **common)
    if circ is not None:
        title = "circular-mean peak layer (LayerIndex)"
        vmin, vmax = min(indices), max(max(indices), min(indices) + 1)
        ticks = list(zip(indices, layers, strict=True))
        if is_surface_map(circ):
            figure = map_figure(
                load_map(circ), circ, title, cmap="viridis", vmin=vmin, vmax=vmax, ticks=ticks
            )
            png = figure_html(figure, f"peak layer map, {model}")
        else:
            png = img_tag(
                figures.layer_map_png(nb.load(str(circ)), title, vmin=vmin, vmax=vmax, ticks=ticks),
                f"peak layer map, {model}",
            )
        parts.append("<h3>Peak layer across participants</h3>")
        parts.append(png)
        legend = ", ".join(f"{i} = {n}" for n, i in zip(layers, indices, strict=True))
        parts.append(
            f'<p class="note">Circular mean of the participants\' peak layers '
            f"(sequential colour map, shallow to deep; {html.escape(legend)}).</p>"
        )

    paths, titles, thresholded, test = [], [], False, ""
    for name in layers:
        desc = layer_desc(model, name)
        thr = find_group_map(output_dir, desc=desc, stat="meanrthresh", **common)
        path = find_group_map(output_dir, desc=desc, stat="meanr", **common)
        if thr is not None and np.isfinite(load_map(thr)).any():
            path, thresholded = thr, True
            test = output_sidecar(thr).get("Test", "")
        if path is not None:
            paths.append(path)
            titles.append(name)
    if paths:
        values = [load_map(p) for p in paths]
        vmax = (
            max(float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 0.0 for v in values) or 1.0
        )
        parts.append("<h3>Mean brain score per layer</h3>")
        if is_surface_map(paths[0]):  # brains on the mesh found offline (caption: which)
            for path, title, value in zip(paths, titles, values, strict=True):
                figure = map_figure(
                    value, path, f"mean r, {title}", cmap="cold_hot", vmin=-vmax, vmax=vmax
                )
                parts.append(img_tag(figure.png, f"mean r of {title}, {model}"))
            parts.append(f'<p class="note">{html.escape(figure.caption)}</p>')
        else:
            imgs = [nb.load(str(p)) for p in paths]
            parts.append(
                img_tag(
                    figures.layer_grid_png(imgs, titles, cmap="cold_hot", vmin=-vmax, vmax=vmax),
                    f"mean r per layer, {model}",
                )
            )
        parts.append(
            '<p class="note">Mean Pearson r across participants'
            + (
                f", thresholded by the {html.escape(test)} (where the corrected p is below the "
                "level), else unthresholded"
                if thresholded
                else ""
            )
            + ".</p>"
        )
    info = {
        "layers": layers,
        "n_subjects": meta.get("NumberOfSubjects"),
        "atlas": meta.get("Atlas"),
    }
    return "\n".join(parts), info


def write_group_report(output_dir: Path, *, task: str, space: str, res: str | None) -> Path:
    """Write ``OUTPUT_DIR/group.html`` from the group-level outputs on disk.

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset (after the group level).
    task, space, res : str
        Entities of the group outputs.

    Returns
    -------
    Path
        The report.
    """
    output_dir = Path(output_dir)
    common = {"task": task, "space": space, "res": res}
    models = _models(output_dir, common)
    sections, infos = [], {}
    for model in models:
        text, infos[model] = _model_section(output_dir, model, common)
        sections.append(text)
    ceiling = ceiling_section(output_dir, models, common)
    comparison, contrasts = comparison_section(output_dir, common)
    form = space_for(space)
    any_meta = (
        output_sidecar(table_path(output_dir, desc=models[0], stat="roi", **common))
        if models
        else {}
    )
    labels = {s: task_label(t) for s, t in any_meta.get("ParticipantTasks", {}).items()}
    data = data_summary(output_dir, task, labels)
    n_sub = len(data["participant"].unique()) if len(data) else 0
    summary = {
        "Task": task,
        "Space": f"{space}{':res-' + res if res else ''}",
        "Participants": n_sub,
        "Models": ", ".join(models) or "none",
        "ROI atlas": any_meta.get("Atlas")
        or f"none (whole brain only{'; ' + help_ if (help_ := form.roi_atlas_help) else ''})",
        "Map form": form.form_description,
        "Noise ceiling": ceiling_method(output_dir, common) or "no",
        "Model comparisons": "; ".join(contrasts) or "none",
        "Group test": {
            "wilcoxon": "Wilcoxon signed-rank, Benjamini-Hochberg FDR",
            "permutation": "sign-flip permutation, max-statistic FWE",
        }[_group_test(output_dir, models, common)],
    }
    fdr = _fdr_level(output_dir, models, common)
    methods = group_methods_boilerplate(
        n_subjects=n_sub,
        models=models,
        fdr_q=fdr,
        atlas=any_meta.get("Atlas"),
        noise_ceiling=bool(ceiling),
        comparisons=contrasts,
        noise_ceiling_method=ceiling_method(output_dir, common) or "paper",
        group_test=_group_test(output_dir, models, common),
    )
    links = "".join(f'<a href="#model-{html.escape(m)}">{html.escape(m)}</a>' for m in models)
    links += '<a href="#ceiling">noise ceiling</a>' if ceiling else ""
    links += '<a href="#comparison">model comparison</a>' if comparison else ""
    links += '<a href="#methods">methods</a>'
    joint = joint_section(  # --joint: the group means' partition (bids_w2v.reports.joint)
        [p for p in output_dir.glob(f"task-{task}_*_stat-meanr2_statmap.*") if p.suffix != ".json"],
        "Joint model (--joint), group mean",
    )
    body = f"""<h1>bids-w2v group report: task {html.escape(task)}</h1>
<nav>{links}</nav>
<h2>Summary</h2>
{kv_table(summary)}
<h2>Data</h2>
{frame_table(data) if len(data) else "<p>No participant map found.</p>"}
{"".join(sections)}
{ceiling}
{comparison}
{joint}
{methods_section(methods, '<h2 id="methods">Methods</h2>')}"""
    body = page(f"bids-w2v: group report, task {task}", STYLE, body)
    return write_text(output_dir / "group.html", body)


def _fdr_level(output_dir: Path, models: list[str], common: dict) -> float:
    for model in models:
        pattern = f"task-{common['task']}_*_desc-{layer_desc(model)}*_stat-meanrthresh_statmap.json"
        for path in Path(output_dir).glob(pattern):
            meta = json.loads(path.read_text())
            return float(meta.get("FDRLevel", meta.get("FWELevel", 0.05)))
    return 0.05


def _group_test(output_dir: Path, models: list[str], common: dict) -> str:
    """``permutation`` if the thresholded maps were made by the sign-flip test, else
    ``wilcoxon``."""
    for model in models:
        pattern = f"task-{common['task']}_*_desc-{layer_desc(model)}*_stat-meanrthresh_statmap.json"
        for path in Path(output_dir).glob(pattern):
            return "permutation" if "FWELevel" in json.loads(path.read_text()) else "wilcoxon"
    return "wilcoxon"


def regenerate_reports(
    output_dir: Path,
    *,
    task: str,
    space: str,
    res: str | None,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Rewrite every participant report and the group report from the outputs (no fitting).

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task, space, res : str
        Entities of the maps (``task``: the group outputs' label).
    labels : mapping, optional
        Subject -> the task label of its maps, when participants heard different stories
        (default: ``task`` for every participant).

    Returns
    -------
    list of Path
        The reports written.
    """
    from bids_w2v.reports.participant import write_participant_report

    output_dir = Path(output_dir)
    reports = []
    for func in sorted(output_dir.glob("sub-*/func")):
        label = (labels or {}).get(func.parent.name[4:], task)
        maps = sorted(  # NIfTI, GIfTI per hemisphere or CIFTI
            p for p in func.glob(f"*_task-{label}_*_statmap.*") if p.suffix != ".json"
        )
        if any("_stat-r_" in m.name for m in maps):
            reports.append(write_participant_report(output_dir, func.parent.name[4:], maps))
    if list(output_dir.glob(f"task-{task}_*_stat-roi_summary.tsv")):
        reports.append(write_group_report(output_dir, task=task, space=space, res=res))
    return reports
