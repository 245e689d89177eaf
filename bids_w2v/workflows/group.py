"""Group-level workflow: one node per model writing mean, peak-layer and circular-mean maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_w2v.interfaces.group import GroupMaps


def init_group_wf(
    model_labels: Sequence[str],
    *,
    output_dir: Path,
    work_dir: Path,
    task: str,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
    name: str = "bids_w2v_group_wf",
) -> pe.Workflow:
    """Build the group-level graph.

    Parameters
    ----------
    model_labels : sequence of str
        Models found in the participant outputs.
    output_dir, work_dir : Path
        Derivative dataset root and Nipype working folder.
    task, space, res : str
        Entities of the maps to combine.
    participants : sequence of str
        Restrict to these subjects (all by default).
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        One ``group_<model>`` node per model.
    """
    wf = pe.Workflow(name=name, base_dir=str(work_dir))
    for label in model_labels:
        wf.add_nodes(
            [
                pe.Node(
                    GroupMaps(
                        output_dir=str(output_dir),
                        task=task,
                        space=space,
                        res=res,
                        model_label=label,
                        participants=list(participants),
                    ),
                    name=f"group_{label}",
                )
            ]
        )
    return wf
