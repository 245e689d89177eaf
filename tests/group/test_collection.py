"""The group level combines participants who heard different sets of stories: one map per
participant (the one fitted on the most of the chosen tasks), group outputs named after all."""

from __future__ import annotations

import json
import warnings

import pytest

from bids_w2v.errors import InputError
from bids_w2v.group.collection import (
    collect_participant_maps,
    group_tasks,
    participant_tasks,
)
from bids_w2v.group.maps import write_group_maps
from bids_w2v.outputs.names import task_label
from bids_w2v.testing.group_maps import SPACE, write_maps

ONE_MODEL = (("tiny", False, 0.1),)


def _subjects(found) -> list[str]:
    return sorted({s for layers in found.values() for maps in layers.values() for s, _, _ in maps})


def test_participants_with_different_story_sets_are_combined(tmp_path):
    out = tmp_path / "out"
    write_maps(out, subjects=("01", "02", "03"), models=ONE_MODEL, tasks=("listen", "story"))
    write_maps(out, subjects=("04", "05"), models=ONE_MODEL, tasks=("listen",), seed=1)
    assert next(out.glob("sub-01/func/sub-01_task-listenStory_*_stat-r_statmap.nii.gz"))
    found = collect_participant_maps(out, None, SPACE, None)
    assert _subjects(found) == ["01", "02", "03", "04", "05"]
    assert participant_tasks(found)["04"] == ("listen",)
    assert group_tasks(found) == ("listen", "story")
    label = task_label(group_tasks(found))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = write_group_maps(
            found["tiny"], output_dir=out, model_label="tiny", task=label, space=SPACE, res=None
        )
    meanr = next(f for f in files if "_stat-meanr_" in f.name)
    assert meanr.name.startswith("task-listenStory_space-")
    meta = json.loads(meanr.with_name(meanr.name.replace(".nii.gz", ".json")).read_text())
    assert meta["Tasks"] == ["listen", "story"] and meta["NumberOfSubjects"] == 5
    assert meta["ParticipantTasks"]["sub-04"] == ["listen"]
    assert meta["ParticipantTasks"]["sub-01"] == ["listen", "story"]
    # --task listen: the maps fitted on listen only
    found = collect_participant_maps(out, ("listen",), SPACE, None)
    assert _subjects(found) == ["04", "05"]


def test_joint_map_is_used_over_single_story_maps(tmp_path):
    """A participant fitted on each story alone and on both jointly: the joint map, unless
    --task keeps only the single story."""
    out = tmp_path / "out"
    write_maps(out, subjects=("01", "02"), models=ONE_MODEL, tasks=("listen",))
    write_maps(out, subjects=("01", "02"), models=ONE_MODEL, tasks=("story",), seed=1)
    write_maps(out, subjects=("01", "02"), models=ONE_MODEL, tasks=("listen", "story"), seed=2)
    found = collect_participant_maps(out, None, SPACE, None)
    paths = [p for maps in found["tiny"].values() for _, p, _ in maps]
    assert paths and all("_task-listenStory_" in p.name for p in paths)
    found = collect_participant_maps(out, ["story"], SPACE, None)
    paths = [p for maps in found["tiny"].values() for _, p, _ in maps]
    assert paths and all("_task-story_" in p.name for p in paths)


def test_single_story_maps_of_one_participant_are_ambiguous(tmp_path):
    out = tmp_path / "out"
    write_maps(out, subjects=("01",), models=ONE_MODEL, tasks=("listen",))
    write_maps(out, subjects=("01",), models=ONE_MODEL, tasks=("story",), seed=1)
    with pytest.raises(InputError, match=r"sub-01 has participant maps of several sets of tasks"):
        collect_participant_maps(out, None, SPACE, None)
    assert participant_tasks(collect_participant_maps(out, ["task-story"], SPACE, None)) == {
        "01": ("story",)
    }


def test_maps_without_tasks_field_use_their_task_entity(tmp_path):
    """Maps of bids-w2v before joint fits have no ``Tasks``: their name's task is used."""
    out = tmp_path / "out"
    write_maps(out, subjects=("01", "02"), models=ONE_MODEL)
    found = collect_participant_maps(out, "listen", SPACE, None)
    assert group_tasks(found) == ("listen",) and task_label(group_tasks(found)) == "listen"
    with pytest.raises(InputError, match="for task"):
        collect_participant_maps(out, ["story"], SPACE, None)


@pytest.mark.slow  # --reports-only redraws the participant reports
def test_group_task_says_who_is_left_out(tmp_path, capsys):
    """--task at the group level: participants with no map among those tasks are named."""
    from bids_w2v.cli.run import main

    root, out = tmp_path / "ds", tmp_path / "out"
    root.mkdir()
    (root / "dataset_description.json").write_text('{"Name": "d", "BIDSVersion": "1.10.0"}')
    write_maps(out, subjects=("01", "02"), models=ONE_MODEL, tasks=("listen",))
    write_maps(out, subjects=("03",), models=ONE_MODEL, tasks=("listen", "story"), seed=1)
    args = [str(root), str(out), "group", "--task", "listen", "--reports-only"]
    assert main([*args, "-w", str(tmp_path / "w")]) == 0
    assert "sub-03 left out of the group level" in capsys.readouterr().out
    assert main([str(root), str(out), "group", "--reports-only", "-w", str(tmp_path / "w")]) == 0
    assert "left out" not in capsys.readouterr().out
