"""The group level as it was before it streamed (every layer of every participant in memory):
the reference that :func:`bids_w2v.group.maps.write_group_maps` and
:func:`bids_w2v.group.comparison.write_model_comparison`, which read one layer at a time, must
equal. Copied verbatim from bids-w2v before the change (only the imports differ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.group.collection import load_grid, load_map, same_grid
from bids_w2v.group.maps import GroupWriter
from bids_w2v.group.significance import GroupTest, significance_maps, write_significance
from bids_w2v.group.stacks import load_model_stack
from bids_w2v.group.statistics import (
    circular_mean_position,
    fdr_bh,
    mean_across_subjects,
    sem_across_subjects,
    wilcoxon_against_zero,
)
from bids_w2v.outputs.maps import peak_layer
from bids_w2v.outputs.names import layer_desc


def write_group_maps(
    layer_maps: Mapping[str, Sequence[tuple[str, Path, dict]]],
    *,
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    model_label: str,
    fdr_q: float = 0.05,
    roi_atlas: Path | None = None,
    ceiling_file: Path | None = None,
    group_test: GroupTest = GroupTest(),
) -> list[Path]:
    """Group maps and tables of one model.

    Per layer: mean r (``stat-meanr``), Wilcoxon p (``stat-p``), BH-FDR q (``stat-q``), the mean
    where q < ``fdr_q`` (``stat-meanrthresh``) -- or with ``group_test.test == "permutation"``
    the sign-flip t (``stat-t``), its FWE-corrected p (``stat-fwep``) and the mean where that p
    < ``fdr_q`` and, with a noise ceiling, mean r / mean ceiling
    (``stat-normr``). Per model: peak layer of the mean (``stat-peaklayer``), circular mean of
    the per-subject peaks (``stat-circpeaklayer``), the distribution of per-subject peaks
    (``stat-peaklayer_summary.tsv``) and scores per region (``stat-roi_summary.tsv``; the whole
    brain always, atlas regions with ``roi_atlas``).

    Parameters
    ----------
    layer_maps : mapping
        Layer name -> list of (subject, map path, sidecar) (:func:`collect_participant_maps`).
    output_dir : Path
        The bids-w2v derivative dataset.
    task, space, res, model_label : str
        Entities of the outputs.
    fdr_q : float
        FDR level of the thresholded maps.
    roi_atlas : Path, optional
        Label image (names TSV beside it) for the ROI table.
    ceiling_file : Path, optional
        Group mean noise-ceiling map (:func:`write_noise_ceiling`).
    group_test : GroupTest
        Wilcoxon + BH-FDR (the paper's) or sign-flip permutation with FWE correction.

    Returns
    -------
    list of Path
        Files written.
    """
    data = load_model_stack(layer_maps)
    layers, indices, subjects = data.layers, data.indices, data.subjects
    out = GroupWriter(output_dir, data.ref, task=task, space=space, res=res)
    meta0 = {**data.provenance, "NumberOfSubjects": len(subjects)}
    notes: list[str] = []
    n_layers, n_sub = len(layers), len(subjects)
    flat = data.scores.reshape(n_layers, n_sub, -1)
    means = np.stack([mean_across_subjects(flat[i]) for i in range(n_layers)])
    ceiling = load_map(ceiling_file).ravel() if ceiling_file else None
    if ceiling_file and not same_grid(load_grid(ceiling_file), data.ref):
        raise InputError(f"The noise ceiling {ceiling_file} is not on the grid of the maps.")
    for i, name in enumerate(layers):
        desc = layer_desc(model_label, name)
        layer_meta = {**meta0, "LayerName": name, "LayerIndex": indices[i]}
        out.map(means[i], {**layer_meta, "Statistic": "mean_pearson_r"}, stat="meanr", desc=desc)
        sig = significance_maps(flat[i], fdr_q, notes, f"model {model_label}", group_test)
        if sig is not None:
            write_significance(
                out,
                sig,
                means[i],
                fdr_q=fdr_q,
                meta=layer_meta,
                desc=desc,
                thresholded_stat="meanrthresh",
                thresholded_meta={
                    "Statistic": "mean_pearson_r_thresholded",
                    "Description": "Mean r",
                },
            )
        if ceiling is not None:
            from bids_w2v.group.ceiling import normalised_scores

            out.map(
                normalised_scores(means[i], ceiling),
                {
                    **layer_meta,
                    "Statistic": "normalised_mean_pearson_r",
                    "Description": "Mean brain score divided by the mean noise ceiling; NaN where "
                    "the ceiling is <= 0.",
                    "NoiseCeiling": ceiling_file.name,
                },
                stat="normr",
                desc=desc,
            )

    layer_table = {str(i): n for n, i in zip(layers, indices, strict=True)}
    peak = peak_layer(means, indices)
    out.map(
        peak,
        {
            **meta0,
            "Statistic": "peak_layer",
            "Layers": layer_table,
            "Description": "Layer of highest mean brain score across participants.",
        },
        stat="peaklayer",
        desc=layer_desc(model_label),
    )
    sub_peaks = np.stack([peak_layer(flat[:, s], indices) for s in range(n_sub)])
    out.map(
        circular_mean_position(sub_peaks, indices),
        {
            **meta0,
            "Statistic": "circular_mean_peak_layer",
            "Layers": layer_table,
            "Description": "Per-participant peak layers combined by the circular mean of Millet, "
            "Caucheteux et al. 2022: angle(mean exp(2 i pi k / (K + 1))), k the position among "
            "the K layers compared, reported on the LayerIndex scale.",
        },
        stat="circpeaklayer",
        desc=layer_desc(model_label),
    )
    rows = []
    for s, sub in enumerate(subjects):
        valid = np.isfinite(sub_peaks[s])
        for name, index in zip(layers, indices, strict=True):
            count = int(np.sum(sub_peaks[s] == index))
            rows.append(
                {
                    "participant_id": f"sub-{sub}",
                    "layer": name,
                    "layer_index": index,
                    "n_voxels": count,
                    "percent": 100 * count / valid.sum() if valid.any() else np.nan,
                }
            )
    out.table(
        pd.DataFrame(rows),
        {
            **meta0,
            "Description": "Distribution of each participant's per-voxel peak layer.",
            "n_voxels": "voxels of the participant's mask whose best layer is this one",
            "percent": "the same, in percent of the participant's voxels",
        },
        stat="peaklayer",
        desc=layer_desc(model_label),
    )

    from bids_w2v.group.roi import load_atlas, roi_summary

    labels, names = (None, {})
    if roi_atlas:
        labels, names = load_atlas(Path(roi_atlas), data.ref)
        labels = labels.ravel()
    table = roi_summary(flat, layers, indices, labels, names, peak, model_label)
    out.table(
        table,
        {
            **meta0,
            "Atlas": str(roi_atlas) if roi_atlas else None,
            "Notes": notes,
            "Description": "Brain score per region and layer: per participant the mean over the "
            "region's voxels, then mean and standard error across participants; percent_peak is "
            "the share of the region's voxels whose group peak layer (stat-peaklayer) is this "
            "layer. roi_index -1 is the whole brain (union of the participants' masks).",
        },
        stat="roi",
        desc=layer_desc(model_label),
    )
    return out.written


def write_model_comparison(
    maps_a: Mapping[str, Sequence[tuple[str, Path, dict]]],
    maps_b: Mapping[str, Sequence[tuple[str, Path, dict]]],
    *,
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    fdr_q: float = 0.05,
    group_test: GroupTest = GroupTest(),
) -> list[Path]:
    """Paired comparison of two models per layer (model A minus model B).

    Per layer present in both: the mean difference map (``desc-<A>Minus<B><Layer>_stat-meandiff``),
    paired Wilcoxon p and BH q maps (or, with ``group_test``, sign-flip permutation t and
    FWE-corrected p maps) and the thresholded difference; and a whole-brain table
    (``desc-<A>Minus<B>_stat-comparison_summary.tsv``): per layer the participants' whole-brain
    mean scores of both models, their difference and a paired Wilcoxon test across participants.

    Returns
    -------
    list of Path
        Files written.
    """
    a, b = load_model_stack(maps_a), load_model_stack(maps_b)
    if not same_grid(a.ref, b.ref):
        raise InputError(
            f"The maps of models {a.model_label} and {b.model_label} are on different grids; "
            "compare models computed in the same --space."
        )
    subjects = [s for s in a.subjects if s in b.subjects]
    layers = [n for n in a.layers if n in b.layers]
    label = f"{a.model_label}Minus{b.model_label}"
    out = GroupWriter(output_dir, a.ref, task=task, space=space, res=res)
    meta0 = {
        "ModelA": a.provenance,
        "ModelB": b.provenance,
        "Participants": subjects,
        "NumberOfSubjects": len(subjects),
        "Contrast": f"{a.model_label} - {b.model_label}",
    }
    notes: list[str] = []
    rows = []
    if not subjects or not layers:
        notes.append(f"models {a.model_label} and {b.model_label} share no participant or layer")
    for name in layers:
        ia, ib = a.layers.index(name), b.layers.index(name)
        sa = a.scores[ia][[a.subjects.index(s) for s in subjects]].reshape(len(subjects), -1)
        sb = b.scores[ib][[b.subjects.index(s) for s in subjects]].reshape(len(subjects), -1)
        sa, sb = sa.astype(np.float64), sb.astype(np.float64)
        diff = sa - sb
        mean = mean_across_subjects(diff)
        desc = layer_desc(label, name)
        layer_meta = {**meta0, "LayerName": name, "LayerIndex": a.indices[ia]}
        out.map(
            mean,
            {**layer_meta, "Statistic": "mean_difference_pearson_r"},
            stat="meandiff",
            desc=desc,
        )
        sig = significance_maps(
            diff,
            fdr_q,
            notes,
            f"comparison {label}",
            group_test,
            tested="of the paired differences across participants against 0",
        )
        if sig is not None:
            write_significance(
                out,
                sig,
                mean,
                fdr_q=fdr_q,
                meta=layer_meta,
                desc=desc,
                thresholded_stat="meandiffthresh",
                thresholded_meta={
                    "Statistic": "mean_difference_thresholded",
                    "Description": "Mean difference",
                },
            )
        # whole brain: per participant the mean over voxels inside both models' masks
        both = np.isfinite(sa) & np.isfinite(sb)
        with np.errstate(invalid="ignore"):
            wa = np.where(both, sa, 0).sum(1) / both.sum(1)
            wb = np.where(both, sb, 0).sum(1) / both.sum(1)
        wdiff = wa - wb
        if len(subjects) >= 2 and np.isfinite(wdiff).all():
            stat, p = wilcoxon_against_zero(wdiff[:, None])
            stat, p = float(stat[0]), float(p[0])
        else:
            stat, p = np.nan, np.nan
        rows.append(
            {
                "model_a": a.model_label,
                "model_b": b.model_label,
                "layer": name,
                "layer_index": a.indices[ia],
                "mean_a": float(np.mean(wa)),
                "mean_b": float(np.mean(wb)),
                "mean_difference": float(np.mean(wdiff)),
                "sem_difference": float(sem_across_subjects(wdiff[:, None])[0]),
                "n_subjects": len(subjects),
                "wilcoxon_statistic": stat,
                "p": p,
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["q"] = fdr_bh(table["p"].to_numpy())
    out.table(
        table,
        {
            **meta0,
            "Notes": notes,
            "Description": "Whole-brain comparison per layer (Millet, Caucheteux et al. 2022, Fig. "
            "2C): each participant's mean brain score over the voxels of both models' maps, the "
            "difference A - B, a paired two-sided Wilcoxon test across participants and BH q over "
            "layers.",
        },
        stat="comparison",
        desc=layer_desc(label),
    )
    return out.written
