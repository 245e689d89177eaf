"""Self-contained HTML report of the group level (figures embedded as PNG), from the outputs."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from bids_w2v.group.collection import find_group_map, load_map, table_path
from bids_w2v.group.noise_ceiling import group_ceiling_path
from bids_w2v.outputs.atomic import write_text
from bids_w2v.outputs.names import layer_desc
from bids_w2v.reports import figures
from bids_w2v.reports.boilerplate import BIBTEX, group_methods_boilerplate
from bids_w2v.reports.surface_figures import is_surface_map, map_png
from bids_w2v.spaces import space_kind

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .2em .8em;
border-bottom: 1px solid #eee; text-align: left; } img { max-width: 100%; }
.note { color: #555; font-size: .9em; } .warn { color: #8a4b00; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 1em; font-size: .85em; }
nav a { margin-right: 1em; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, floats: str = "{:.4f}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                text = "n/a" if np.isnan(value) else floats.format(value)
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _kv(items: dict) -> str:
    return (
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in items.items()
        )
        + "</table>"
    )


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)


def _sidecar(path: Path) -> dict:
    for ext in (".nii.gz", ".func.gii", ".dscalar.nii", ".tsv"):
        if path.name.endswith(ext):
            side = path.with_name(path.name[: -len(ext)] + ".json")
            return json.loads(side.read_text()) if side.exists() else {}
    return {}


def data_summary(output_dir: Path, task: str) -> pd.DataFrame:
    """Runs, scans and stimuli of each participant, from their maps' sidecars.

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task : str
        Task label.

    Returns
    -------
    DataFrame
        One row per participant and model.
    """
    rows = []
    for sidecar in sorted(
        Path(output_dir).glob(f"sub-*/func/sub-*_task-{task}_*_stat-r_statmap.json")
    ):
        meta = json.loads(sidecar.read_text())
        if "ModelLabel" not in meta:
            continue
        sub = sidecar.name.split("_")[0]
        key = (sub, meta["ModelLabel"])
        if any((r["participant"], r["model"]) == key for r in rows):
            continue
        sources = [str(s) for s in meta.get("Sources", [])]
        audio = {s for s in sources if s.lower().endswith((".wav", ".flac", ".mp3", ".ogg"))}
        rows.append(
            {
                "participant": sub,
                "model": meta["ModelLabel"],
                "runs": sum(
                    "_bold.nii" in s
                    or s.endswith(".dtseries.nii")
                    or (s.endswith(".func.gii") and "hemi-R" not in s)
                    for s in sources
                ),
                "scans": meta.get("NumberOfScans", "n/a"),
                "dropped volumes": meta.get("DroppedVolumes", "n/a"),
                "stimuli": len(audio),
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
        meta = _sidecar(table_path(output_dir, desc=label, stat="roi", **common))
        randomness[label] = bool(meta.get("RandomInit", False))
    return sorted(labels, key=lambda m: (randomness[m], m))


def _model_section(output_dir: Path, model: str, common: dict) -> tuple[str, dict]:
    """HTML of one model: curves per ROI, peak distribution, peak-layer map, maps per layer."""
    roi_file = table_path(output_dir, desc=model, stat="roi", **common)
    roi = _read_tsv(roi_file)
    meta = _sidecar(roi_file)
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
    parts.append(_img(figures.layer_curves_png(curves), f"score by layer per region, {model}"))
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
    parts.append(_table(summary))

    peaks_file = table_path(output_dir, desc=model, stat="peaklayer", **common)
    if peaks_file.exists():
        peaks = _read_tsv(peaks_file)
        table = peaks.pivot(index="participant_id", columns="layer", values="percent")
        table = table[[c for c in layers if c in table.columns]]
        parts.append("<h3>Per-participant peak layers</h3>")
        parts.append(
            _img(
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
        if is_surface_map(circ):
            png = map_png(load_map(circ), circ, title, cmap="viridis", vmin=vmin, vmax=vmax)
        else:
            png = figures.layer_map_png(nb.load(str(circ)), title, vmin=vmin, vmax=vmax)
        parts.append("<h3>Peak layer across participants</h3>")
        parts.append(_img(png, f"peak layer map, {model}"))
        legend = ", ".join(f"{i} = {n}" for n, i in zip(layers, indices, strict=True))
        parts.append(
            f'<p class="note">Circular mean of the participants\' peak layers '
            f"(sequential colour map, shallow to deep; {html.escape(legend)}).</p>"
        )

    paths, titles, thresholded = [], [], False
    for name in layers:
        desc = layer_desc(model, name)
        thr = find_group_map(output_dir, desc=desc, stat="meanrthresh", **common)
        path = find_group_map(output_dir, desc=desc, stat="meanr", **common)
        if thr is not None and np.isfinite(load_map(thr)).any():
            path, thresholded = thr, True
        if path is not None:
            paths.append(path)
            titles.append(name)
    if paths:
        values = [load_map(p) for p in paths]
        vmax = (
            max(float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 0.0 for v in values) or 1.0
        )
        parts.append("<h3>Mean brain score per layer</h3>")
        if is_surface_map(paths[0]):  # fsaverage5 on nilearn's bundled mesh, else histograms
            for path, title, value in zip(paths, titles, values, strict=True):
                png = map_png(
                    value, path, f"mean r, {title}", cmap="cold_hot", vmin=-vmax, vmax=vmax
                )
                parts.append(_img(png, f"mean r of {title}, {model}"))
        else:
            imgs = [nb.load(str(p)) for p in paths]
            parts.append(
                _img(
                    figures.layer_grid_png(imgs, titles, cmap="cold_hot", vmin=-vmax, vmax=vmax),
                    f"mean r per layer, {model}",
                )
            )
        parts.append(
            '<p class="note">Mean Pearson r across participants'
            f"{' where q < FDR level (Wilcoxon, BH), else unthresholded' if thresholded else ''}"
            ".</p>"
        )
    info = {
        "layers": layers,
        "n_subjects": meta.get("NumberOfSubjects"),
        "atlas": meta.get("Atlas"),
    }
    return "\n".join(parts), info


def _ceiling_section(output_dir: Path, models: list[str], common: dict) -> str:
    path = group_ceiling_path(output_dir, common["task"], common["space"], common["res"])
    if not path.exists():
        return ""
    ceiling = load_map(path)
    meta = _sidecar(path)
    positive = np.isfinite(ceiling) & (ceiling > 0)
    rows = []
    for model in models:
        roi = _read_tsv(table_path(output_dir, desc=model, stat="roi", **common))
        for layer in roi["layer"].unique():
            mean_file = find_group_map(
                output_dir, desc=layer_desc(model, layer), stat="meanr", **common
            )
            if mean_file is None or not positive.any():
                continue
            mean = load_map(mean_file)
            ok = positive & np.isfinite(mean)
            rows.append(
                {
                    "model": model,
                    "layer": layer,
                    "mean r": float(mean[ok].mean()) if ok.any() else np.nan,
                    "mean ceiling": float(ceiling[ok].mean()) if ok.any() else np.nan,
                }
            )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["% of ceiling"] = 100 * frame["mean r"] / frame["mean ceiling"]
    vmax = float(np.nanmax(np.abs(ceiling))) if np.isfinite(ceiling).any() else 1.0
    parts = [
        '<h2 id="ceiling">Noise ceiling</h2>',
        _img(
            map_png(
                ceiling,
                path,
                "mean noise ceiling (r)",
                cmap="cold_hot",
                vmin=-vmax,
                vmax=vmax or 1.0,
            ),
            "noise ceiling",
        ),
        f'<p class="note">{html.escape(meta.get("Description", ""))} Participants: '
        f"{html.escape(', '.join(meta.get('Participants', [])))}. Scores below are over voxels "
        "with a positive ceiling.</p>",
    ]
    for note in meta.get("Notes", []):
        parts.append(f'<p class="warn">{html.escape(note)}</p>')
    if len(frame):
        parts.append(_table(frame))
    return "\n".join(parts)


def _comparison_section(output_dir: Path, common: dict) -> tuple[str, list[str]]:
    pattern = table_path(output_dir, desc="PAIR", stat="comparison", **common).name
    prefix, suffix = pattern.split("PAIR")
    parts, contrasts = [], []
    for path in sorted(Path(output_dir).glob(prefix + "*" + suffix)):
        table = _read_tsv(path)
        meta = _sidecar(path)
        if not len(table):
            continue
        a, b = table["model_a"].iloc[0], table["model_b"].iloc[0]
        contrasts.append(f"{a} - {b}")
        significant = (table["q"] < 0.05).fillna(False).to_numpy()
        curves = [
            (str(a), list(table["layer"]), list(table["mean_a"]), [np.nan] * len(table)),
            (str(b), list(table["layer"]), list(table["mean_b"]), [np.nan] * len(table)),
        ]
        parts += [
            f"<h3>{html.escape(str(a))} minus {html.escape(str(b))}</h3>",
            _img(
                figures.layer_curves_png(curves, title="whole-brain mean score"),
                f"whole-brain scores of {a} and {b}",
            ),
            _img(
                figures.difference_png(
                    list(table["layer"]),
                    table["mean_difference"],
                    table["sem_difference"],
                    significant,
                    label=f"{a} - {b}",
                ),
                f"difference {a} - {b}",
            ),
            '<p class="note">Whole-brain mean score per participant; bars: mean difference '
            "+/- s.e.m. across participants, dark where the paired Wilcoxon q < 0.05 (BH over "
            "layers).</p>",
            _table(table.drop(columns=["model_a", "model_b"])),
        ]
        for note in meta.get("Notes", []):
            parts.append(f'<p class="warn">{html.escape(note)}</p>')
    if not parts:
        return "", contrasts
    return '<h2 id="comparison">Model comparison</h2>\n' + "\n".join(parts), contrasts


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
    ceiling = _ceiling_section(output_dir, models, common)
    comparison, contrasts = _comparison_section(output_dir, common)
    data = data_summary(output_dir, task)
    any_meta = (
        _sidecar(table_path(output_dir, desc=models[0], stat="roi", **common)) if models else {}
    )
    n_sub = len(data["participant"].unique()) if len(data) else 0
    summary = {
        "Task": task,
        "Space": f"{space}{':res-' + res if res else ''}",
        "Participants": n_sub,
        "Models": ", ".join(models) or "none",
        "ROI atlas": any_meta.get("Atlas")
        or (
            "none (whole brain only)"
            if space_kind(space) == "volume"
            else "none (whole brain only; on surfaces --roi-atlas takes a GIfTI label file per "
            "hemisphere, the hemi-L one given, or a CIFTI .dlabel.nii)"
        ),
        "Map form": {
            "volume": "NIfTI volumes",
            "surface": "GIfTI, one .func.gii per hemisphere",
            "cifti": "CIFTI .dscalar.nii",
        }[space_kind(space)],
        "Noise ceiling": "yes" if ceiling else "no",
        "Model comparisons": "; ".join(contrasts) or "none",
    }
    fdr = _fdr_level(output_dir, models, common)
    methods = group_methods_boilerplate(
        n_subjects=n_sub,
        models=models,
        fdr_q=fdr,
        atlas=any_meta.get("Atlas"),
        noise_ceiling=bool(ceiling),
        comparisons=contrasts,
    )
    links = "".join(f'<a href="#model-{html.escape(m)}">{html.escape(m)}</a>' for m in models)
    links += '<a href="#ceiling">noise ceiling</a>' if ceiling else ""
    links += '<a href="#comparison">model comparison</a>' if comparison else ""
    links += '<a href="#methods">methods</a>'
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bids-w2v: group report, task {html.escape(task)}</title>
<style>{STYLE}</style></head><body>
<h1>bids-w2v group report: task {html.escape(task)}</h1>
<nav>{links}</nav>
<h2>Summary</h2>
{_kv(summary)}
<h2>Data</h2>
{_table(data) if len(data) else "<p>No participant map found.</p>"}
{"".join(sections)}
{ceiling}
{comparison}
<h2 id="methods">Methods</h2>
<pre>{html.escape(methods)}</pre>
<h3>BibTeX</h3>
<pre>{html.escape(BIBTEX)}</pre>
</body></html>
"""
    return write_text(output_dir / "group.html", body)


def _fdr_level(output_dir: Path, models: list[str], common: dict) -> float:
    for model in models:
        pattern = f"task-{common['task']}_*_desc-{layer_desc(model)}*_stat-meanrthresh_statmap.json"
        for path in Path(output_dir).glob(pattern):
            return float(json.loads(path.read_text()).get("FDRLevel", 0.05))
    return 0.05


def regenerate_reports(output_dir: Path, *, task: str, space: str, res: str | None) -> list[Path]:
    """Rewrite every participant report and the group report from the outputs (no fitting).

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task, space, res : str
        Entities of the maps.

    Returns
    -------
    list of Path
        The reports written.
    """
    from bids_w2v.reports.participant import write_participant_report

    output_dir = Path(output_dir)
    reports = []
    for func in sorted(output_dir.glob("sub-*/func")):
        maps = sorted(  # NIfTI, GIfTI per hemisphere or CIFTI
            p for p in func.glob(f"*_task-{task}_*_statmap.*") if p.suffix != ".json"
        )
        if any("_stat-r_" in m.name for m in maps):
            reports.append(write_participant_report(output_dir, func.parent.name[4:], maps))
    if list(output_dir.glob(f"task-{task}_*_stat-roi_summary.tsv")):
        reports.append(write_group_report(output_dir, task=task, space=space, res=res))
    return reports
