"""Group-level workflow: noise ceiling, per-model maps, model comparisons, then the report."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_w2v.interfaces.group import GroupMaps, GroupReport, ModelComparison, NoiseCeiling


def init_group_wf(
    model_labels: Sequence[str],
    *,
    output_dir: Path,
    work_dir: Path,
    task: str,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
    fdr_q: float = 0.05,
    roi_atlas: Path | None = None,
    noise_ceiling: bool = False,
    bids_dir: Path | None = None,
    fmriprep_dir: Path | None = None,
    desc_label: str = "preproc",
    bids_filter_file: Path | None = None,
    stimulus_map: Path | None = None,
    dropped_scans: int = 0,
    mask: Path | None = None,
    name: str = "bids_w2v_group_wf",
) -> pe.Workflow:
    """Build the group-level graph.

    Parameters
    ----------
    model_labels : sequence of str
        Models found in the participant outputs; comparisons are ``model_labels[i] -
        model_labels[j]`` for ``i < j`` (order trained models first).
    output_dir, work_dir : Path
        Derivative dataset root and Nipype working folder.
    task, space, res : str
        Entities of the maps to combine.
    participants : sequence of str
        Restrict to these subjects (all by default).
    fdr_q : float
        FDR level of the thresholded maps.
    roi_atlas : Path, optional
        Label image for the ROI tables.
    noise_ceiling : bool
        Estimate the noise ceiling (needs ``bids_dir`` and ``fmriprep_dir``).
    bids_dir, fmriprep_dir : Path, optional
        Inputs of the noise ceiling.
    desc_label, bids_filter_file, stimulus_map, dropped_scans, mask
        How the participant level found its runs (``--desc-label``, ``--bids-filter-file``,
        ``--stimulus-map``, ``--dropped-scans``, ``--mask``): the noise ceiling re-reads the
        same BOLD.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        ``noise_ceiling`` (optional), one ``group_<model>`` node per model, one
        ``compare_<A>_<B>`` node per pair of models, and ``group_report``.
    """
    wf = pe.Workflow(name=name, base_dir=str(work_dir))
    # every node re-runs (overwrite): its inputs are folder names, and the participant maps
    # in them may have changed since the last group run
    common = {
        "output_dir": str(output_dir),
        "task": task,
        "space": space,
        "res": res,
        "participants": list(participants),
    }
    nodes = []
    ceiling = None
    if noise_ceiling:
        ceiling = pe.Node(
            NoiseCeiling(
                bids_dir=str(bids_dir),
                fmriprep_dir=str(fmriprep_dir),
                desc_label=desc_label,
                bids_filter_file=str(bids_filter_file) if bids_filter_file else None,
                stimulus_map=str(stimulus_map) if stimulus_map else None,
                dropped_scans=int(dropped_scans),
                mask=str(mask) if mask else None,
                **common,
            ),
            name="noise_ceiling",
            overwrite=True,
        )
        nodes.append(ceiling)
    for label in model_labels:
        node = pe.Node(
            GroupMaps(
                model_label=label,
                fdr_q=fdr_q,
                roi_atlas=str(roi_atlas) if roi_atlas else None,
                **common,
            ),
            name=f"group_{label}",
            overwrite=True,
        )
        if ceiling is not None:
            wf.connect(ceiling, "ceiling_file", node, "ceiling_file")
        else:
            wf.add_nodes([node])
        nodes.append(node)
    for a, b in combinations(model_labels, 2):
        node = pe.Node(
            ModelComparison(model_a=a, model_b=b, fdr_q=fdr_q, **common),
            name=f"compare_{a}_{b}",
            overwrite=True,
        )
        wf.add_nodes([node])
        nodes.append(node)
    merge = pe.Node(niu.Merge(len(nodes)), name="collect_outputs")
    report = pe.Node(
        GroupReport(output_dir=str(output_dir), task=task, space=space, res=res),
        name="group_report",
        overwrite=True,
    )
    for i, node in enumerate(nodes, start=1):
        wf.connect(node, "out_files", merge, f"in{i}")
    wf.connect(merge, "out", report, "in_files")
    return wf
