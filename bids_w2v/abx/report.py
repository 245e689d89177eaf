"""ABX outputs: TSV + JSON sidecar per model and layer, a summary, the human comparison, a
figure of error by layer (one line per model) and an HTML report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from bids_w2v import __version__
from bids_w2v.abx.dtw import DISTANCES
from bids_w2v.abx.features import MODEL_INPUTS
from bids_w2v.outputs.atomic import write_json, write_text
from bids_w2v.reports.html import figure_png, frame_table, img_tag, kv_table, page, page_style

__all__ = ["error_by_layer_png", "methods_text", "write_outputs"]

AVERAGING = (
    "cell errors averaged over contexts (and, across speaker, speakers of X) per speaker of "
    "A/B and contrast, then over speakers per contrast, then over contrasts (ordered phone "
    "pairs), as ZeroSpeech 2017/2021"
)
FRAMES = "frame j centred at (j + 0.5) / frame rate; item frames whose centre is in the span"
_MODEL_INPUT_TEXT = {
    MODEL_INPUTS[0]: "the model sees the whole audio file of each item; the item's frames are "
    "cut from the file's frames",
    MODEL_INPUTS[1]: "the model sees only the item's span, cut from its audio file",
}


def _tsv(path: Path, frame: pd.DataFrame) -> Path:
    return write_text(path, frame.to_csv(sep="\t", index=False, na_rep="n/a"))


def methods_text(settings, context: dict) -> str:
    """One paragraph describing the evaluation, from the settings."""
    distances = " and ".join(f"{d} ({DISTANCES[d]})" for d in settings.distances)
    window = (
        "one pass over the input"
        if settings.window_s is None
        else f"windows of {settings.window_s:g} s every {settings.stride_s:g} s"
    )
    return (
        f"ABX phone discrimination (ON phone, BY context, {' and '.join(settings.modes)} "
        f"speaker) on {context['n_items']} items ({context['n_phones']} phones, "
        f"{context['n_contexts']} contexts, {context['n_speakers']} speakers), computed with "
        f"bids-w2v {__version__}. Features were extracted with the BIDS-App's code ({window}); "
        f"{_MODEL_INPUT_TEXT[settings.model_input]}. Items were compared by the DTW-aligned "
        f"{distances} frame distance, normalised by the path length; a triplet counts as right "
        f"when d(A, X) < d(B, X) and as half right on a tie; {AVERAGING} (Millet, Caucheteux et "
        "al. 2022; ZeroSpeech)."
    )


def write_outputs(
    output_dir: Path, scores: Sequence, settings, context: dict, human: pd.DataFrame | None
) -> list[Path]:
    """Write every output; return their paths."""
    from bids_w2v.abx.human import compare_with_humans

    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    common = {"settings": asdict(settings), **context, "Averaging": AVERAGING, "Frames": FRAMES}
    summary, comparison = [], []
    for score in scores:
        stem = output_dir / "abx" / f"model-{score.label}_layer-{score.layer}_abx"
        tables = []
        errors: dict[str, dict[str, float]] = {}
        for (mode, distance), result in score.results.items():
            table = result.contrasts.assign(speaker_mode=mode, distance=distance)
            tables.append(table)
            errors.setdefault(mode, {})[distance] = result.error
            row = dict(model=score.label, layer=score.layer, depth=score.depth)
            summary.append(
                {
                    **row,
                    "speaker_mode": mode,
                    "distance": distance,
                    "error": result.error,
                    "n_triplets": result.n_triplets,
                }
            )
            if human is not None:
                stats = compare_with_humans(
                    result.contrasts, human, n_boot=settings.n_boot, seed=settings.seed
                )
                comparison.append({**row, "speaker_mode": mode, "distance": distance, **stats})
        columns = ["speaker_mode", "distance", "phone_a", "phone_b", "error", "n_speakers"]
        frame = pd.concat(tables, ignore_index=True)[[*columns, "n_triplets"]]
        written.append(_tsv(stem.with_suffix(".tsv"), frame))
        sidecar = {
            "Description": "ABX error per contrast (phone of A and X, phone of B) of one layer",
            "Model": score.model_info,
            "Layer": score.layer,
            "LayerDepth": score.depth,
            "ABXError": errors,
            **common,
        }
        written.append(write_json(stem.with_suffix(".json"), sidecar))
    summary_frame = pd.DataFrame(summary)
    written.append(_tsv(output_dir / "abx_scores.tsv", summary_frame))
    written.append(
        write_json(
            output_dir / "abx_scores.json",
            {
                "Description": "ABX error of every model and layer",
                **common,
                "Methods": methods_text(settings, context),
            },
        )
    )
    human_frame = None
    if human is not None:
        human_frame = pd.DataFrame(comparison)
        written.append(_tsv(output_dir / "abx_human.tsv", human_frame))
        written.append(
            write_json(
                output_dir / "abx_human.json",
                {
                    "Description": "Pearson correlation over contrasts of model and human "
                    "accuracy (model accuracy = 1 - ABX error, both orders of a contrast "
                    f"averaged), with a {settings.n_boot}-resample percentile bootstrap 95% "
                    "interval; native effect = mean accuracy on native minus non-native "
                    "contrasts",
                    "n_human_contrasts": int(len(human)),
                },
            )
        )
    png = error_by_layer_png(summary_frame)
    figure = output_dir / "abx_error_by_layer.png"
    written.append(_bytes(figure, png))
    report = page(
        "ABX phone discrimination",
        page_style(960),
        _report_body(summary_frame, human_frame, png, methods_text(settings, context), context),
    )
    written.append(write_text(output_dir / "abx_report.html", report))
    return written


def _bytes(path: Path, data: bytes) -> Path:
    from bids_w2v.outputs.atomic import atomic_write

    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def error_by_layer_png(summary: pd.DataFrame) -> bytes:
    """ABX error by layer depth, one line per model, one panel per speaker condition (first
    distance)."""
    import matplotlib.pyplot as plt

    distance = summary["distance"].iloc[0]
    modes = list(dict.fromkeys(summary["speaker_mode"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(4.5 * len(modes), 3.4), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        part = summary[(summary["speaker_mode"] == mode) & (summary["distance"] == distance)]
        for model, rows in part.groupby("model", sort=False):
            rows = rows.sort_values("depth")
            if len(rows) == 1:
                ax.axhline(100 * rows["error"].iloc[0], ls="--", lw=1, label=model, color="0.4")
                continue
            ax.plot(rows["depth"], 100 * rows["error"], marker="o", ms=3, label=model)
            ax.set_xticks(rows["depth"], rows["layer"], rotation=90, fontsize=7)
        ax.set_title(f"{mode} speaker ({distance})")
        ax.set_ylabel("ABX error (%)")
        ax.set_ylim(bottom=0)
    axes[0][-1].legend(fontsize=8)
    return figure_png(fig)


def _report_body(summary, human, png, methods: str, context: dict) -> str:
    wide = summary.pivot_table(
        index=["model", "depth", "layer"], columns=["speaker_mode", "distance"], values="error"
    )
    wide.columns = [f"{m} {d}" for m, d in wide.columns]
    wide = wide.reset_index().drop(columns="depth")
    parts = [
        "<h1>ABX phone discrimination</h1>",
        kv_table({k: context[k] for k in ("item_file", "n_items", "n_phones", "n_speakers")}),
        "<h2>Error by layer</h2>",
        img_tag(png, "ABX error by layer"),
        frame_table(wide),
    ]
    if human is not None:
        parts += ["<h2>Model vs human accuracy per contrast</h2>", frame_table(human)]
    parts += ["<h2>Methods</h2>", f"<p>{html.escape(methods)}</p>"]
    return "\n".join(parts)
