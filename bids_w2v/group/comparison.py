"""Paired comparison of two models' brain scores across participants (the paper's Fig. 2C)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.group.collection import same_grid
from bids_w2v.group.maps import GroupWriter
from bids_w2v.group.significance import GroupTest, significance_maps, write_significance
from bids_w2v.group.stacks import open_model_maps
from bids_w2v.group.statistics import (
    fdr_bh,
    mean_across_subjects,
    sem_across_subjects,
    wilcoxon_against_zero,
)
from bids_w2v.outputs.names import layer_desc


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
    a, b = open_model_maps(maps_a), open_model_maps(maps_b)  # one layer at a time
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
        ia = a.layers.index(name)
        sa = a.layer(name, subjects).reshape(len(subjects), -1)
        sb = b.layer(name, subjects).reshape(len(subjects), -1)
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
