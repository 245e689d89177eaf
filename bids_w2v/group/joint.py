"""Group maps of the joint model's variance partitioning (``--joint``).

For every feature space of the joint model, the participants' unique-variance maps
(``desc-unique<space>_stat-r2``, :mod:`bids_w2v.outputs.joint_maps`) are averaged and tested
against 0 across participants as the brain-score maps are (``--group-test``: the paper's
Wilcoxon signed-rank test with Benjamini-Hochberg FDR, or the sign-flip permutation test):
``desc-unique<space>_stat-meanr2`` (mean), ``stat-p``/``stat-q`` (or ``stat-t``/``stat-fwep``)
and ``stat-meanr2thresh``. The other joint-model maps (``desc-joint...``, ``desc-shared...``,
``desc-without...``) are averaged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_w2v.group.collection import entity, load_grid, load_map, scan_participant_maps
from bids_w2v.group.maps import GroupWriter
from bids_w2v.group.significance import GroupTest, significance_maps, write_significance
from bids_w2v.group.statistics import mean_across_subjects


def collect_joint_maps(
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
) -> dict[str, list[tuple[str, Path, dict]]]:
    """The participants' joint-model maps: ``desc`` -> ``[(subject, map, sidecar)]``.

    Only maps whose sidecar names a ``JointModel`` are taken (a hemi-L file stands for its
    GIfTI pair); the scan is :func:`bids_w2v.group.collection.scan_participant_maps`.
    """
    scan = scan_participant_maps(
        output_dir, stat="r2", space=space, res=res, participants=participants, task=task,
        keep=lambda _, meta: "JointModel" in meta,
    )  # fmt: skip
    found: dict = defaultdict(list)
    for sub, path, meta in scan.maps:
        found[entity(path.name, "desc")].append((sub, path, meta))
    return dict(found)


def write_group_joint_maps(
    output_dir: Path,
    *,
    task: str,
    space: str,
    res: str | None,
    fdr_q: float = 0.05,
    group_test: GroupTest = GroupTest(),
    participants: Sequence[str] = (),
) -> list[Path]:
    """Mean maps of the joint model, and the group test of every space's unique variance.

    Returns
    -------
    list of Path
        Maps written (nothing when no participant has joint-model maps).
    """
    found = collect_joint_maps(output_dir, task, space, res, participants)
    written: list[Path] = []
    notes: list[str] = []
    for desc, maps in sorted(found.items()):
        subjects = [s for s, _, _ in maps]
        ref = load_grid(maps[0][1])
        values = np.stack([load_map(p).ravel() for _, p, _ in maps])
        mean = mean_across_subjects(values)
        first = maps[0][2]
        meta = {
            "JointModel": first["JointModel"],
            **({"FeatureSpace": first["FeatureSpace"]} if "FeatureSpace" in first else {}),
            "Statistic": f"mean_{first['Statistic']}",
            "Subjects": subjects,
            "Description": "Mean over participants of the participant maps. "
            + first.get("Description", ""),
        }
        out = GroupWriter(output_dir, ref, task=task, space=space, res=res)
        out.map(mean, meta, stat="meanr2", desc=desc)
        if first["Statistic"] == "unique_r2":
            sig = significance_maps(
                values, fdr_q, notes, f"unique variance of {desc}", group_test
            )
            if sig is not None:
                write_significance(
                    out,
                    sig,
                    mean,
                    fdr_q=fdr_q,
                    meta={k: v for k, v in meta.items() if k != "Description"},
                    desc=desc,
                    thresholded_stat="meanr2thresh",
                    thresholded_meta={
                        "Statistic": "mean_unique_r2_thresholded",
                        "Description": "Mean unique r2",
                    },
                )
        written += out.written
    return written
