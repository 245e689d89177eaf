"""Group-level workflow: noise ceiling, per-model maps, model comparisons, then the report."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_w2v.config import GroupSettings, RunConfig, node_inputs, settings_dict
from bids_w2v.interfaces.group import (
    GroupJointMaps,
    GroupMaps,
    GroupReport,
    ModelComparison,
    NoiseCeiling,
)


def init_group_wf(
    model_labels: Sequence[str],
    *,
    output_dir: Path,
    work_dir: Path,
    task: str,
    space: str,
    res: str | None,
    group: GroupSettings,
    participant: RunConfig,
    participants: Sequence[str] = (),
    tasks: Sequence[str] = (),
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
        Entities of the group outputs (``task``: the label of every participant's tasks,
        :func:`bids_w2v.outputs.names.task_label`).
    group : GroupSettings
        FDR level, ROI atlas, whether to estimate the noise ceiling.
    participant : RunConfig
        The participant level's configuration (:func:`bids_w2v.outputs.record.recorded_config`): the
        noise ceiling finds and cleans the same BOLD (its inputs, cleaning and folds).
    participants : sequence of str
        Restrict to these subjects (all by default).
    tasks : sequence of str
        ``--task``: each participant's map whose tasks are all among these (empty: any).
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        ``noise_ceiling`` (optional), one ``group_<model>`` node per model, one
        ``compare_<A>_<B>`` node per pair of models, ``group_joint`` when the participant level
        ran ``--joint`` (:mod:`bids_w2v.group.joint`), and ``group_report``.
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
        "tasks": list(tasks),
    }
    nodes = []
    ceiling = None
    if group.noise_ceiling:
        ceiling = pe.Node(
            NoiseCeiling(
                **node_inputs(NoiseCeiling, group),
                input_settings=settings_dict(participant.inputs),
                cleaning_settings=settings_dict(participant.cleaning),
                encoding_settings=settings_dict(participant.encoding),
                bids_dir=str(participant.bids_dir),
                fmriprep_dir=str(participant.fmriprep_dir),
                **common,
            ),
            name="noise_ceiling",
            overwrite=True,
        )
        nodes.append(ceiling)
    for label in model_labels:
        node = pe.Node(
            GroupMaps(**node_inputs(GroupMaps, group, model_label=label, **common)),
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
            ModelComparison(**node_inputs(ModelComparison, group, model_a=a, model_b=b, **common)),
            name=f"compare_{a}_{b}",
            overwrite=True,
        )
        wf.add_nodes([node])
        nodes.append(node)
    if participant.encoding.joint:  # --joint: variance partitioning (bids_w2v.group.joint)
        node = pe.Node(
            GroupJointMaps(**node_inputs(GroupJointMaps, group, **common)),
            name="group_joint",
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
