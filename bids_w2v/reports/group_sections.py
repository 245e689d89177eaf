"""Sections of the group report on the noise ceiling and the model comparisons, and the
readers of the group outputs the report uses."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.group.collection import MAP_FORMS, find_group_map, load_map, table_path
from bids_w2v.group.noise_ceiling import group_ceiling_path
from bids_w2v.outputs.names import layer_desc
from bids_w2v.reports import figures
from bids_w2v.reports.html import frame_table, img_tag
from bids_w2v.reports.surface_figures import figure_html, map_figure


def read_tsv(path: Path) -> pd.DataFrame:
    """A table written by the group level (``n/a`` read as missing)."""
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)


def output_sidecar(path: Path) -> dict:
    """The JSON sidecar of a group map or table (empty if none)."""
    for ext in (*MAP_FORMS, ".tsv"):
        if path.name.endswith(ext):
            side = path.with_name(path.name[: -len(ext)] + ".json")
            return json.loads(side.read_text()) if side.exists() else {}
    return {}


def ceiling_method(output_dir: Path, common: dict) -> str | None:
    """The method of the group noise-ceiling map (``paper``/``voxelwise``), None if absent.

    Maps written before the method was recorded were made by the voxelwise method."""
    path = group_ceiling_path(output_dir, common["task"], common["space"], common["res"])
    if not path.exists():
        return None
    return output_sidecar(path).get("NoiseCeilingMethod", "voxelwise")


CEILING_METHOD_TEXT = {
    "paper": "the authors' method (PCA of the participant and of the others' mean, RidgeCV "
    "between the components, 10 unshuffled folds, Pearson r over the whole series; Millet, "
    "Caucheteux et al. 2022)",
    "voxelwise": "voxelwise least squares on the encoding's outer folds (bids-w2v; not the "
    "paper's method: normalised scores are not comparable with the paper's)",
}


def ceiling_section(output_dir: Path, models: list[str], common: dict) -> str:
    path = group_ceiling_path(output_dir, common["task"], common["space"], common["res"])
    if not path.exists():
        return ""
    ceiling = load_map(path)
    meta = output_sidecar(path)
    method = meta.get("NoiseCeilingMethod", "voxelwise")
    positive = np.isfinite(ceiling) & (ceiling > 0)
    rows = []
    for model in models:
        roi = read_tsv(table_path(output_dir, desc=model, stat="roi", **common))
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
        figure_html(
            map_figure(
                ceiling,
                path,
                "mean noise ceiling (r)",
                cmap="cold_hot",
                vmin=-vmax,
                vmax=vmax or 1.0,
            ),
            "noise ceiling",
        ),
        f"<p>Method: <b>{html.escape(method)}</b>, "
        f"{html.escape(CEILING_METHOD_TEXT.get(method, ''))}.</p>"
        f'<p class="note">{html.escape(meta.get("Description", ""))} Participants: '
        f"{html.escape(', '.join(meta.get('Participants', [])))}. Scores below are over voxels "
        "with a positive ceiling.</p>",
    ]
    for note in meta.get("Notes", []):
        parts.append(f'<p class="warn">{html.escape(note)}</p>')
    if len(frame):
        parts.append(frame_table(frame))
    return "\n".join(parts)


def comparison_section(output_dir: Path, common: dict) -> tuple[str, list[str]]:
    pattern = table_path(output_dir, desc="PAIR", stat="comparison", **common).name
    prefix, suffix = pattern.split("PAIR")
    parts, contrasts = [], []
    for path in sorted(Path(output_dir).glob(prefix + "*" + suffix)):
        table = read_tsv(path)
        meta = output_sidecar(path)
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
            img_tag(
                figures.layer_curves_png(curves, title="whole-brain mean score"),
                f"whole-brain scores of {a} and {b}",
            ),
            img_tag(
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
            frame_table(table.drop(columns=["model_a", "model_b"])),
        ]
        for note in meta.get("Notes", []):
            parts.append(f'<p class="warn">{html.escape(note)}</p>')
    if not parts:
        return "", contrasts
    return '<h2 id="comparison">Model comparison</h2>\n' + "\n".join(parts), contrasts
