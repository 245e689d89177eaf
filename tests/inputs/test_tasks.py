"""Every story a participant heard, in one model: which tasks are fitted, in which order, and
what is said about the others (bids_w2v.inputs.tasks)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
import soundfile as sf

from bids_w2v.cli.run import main
from bids_w2v.config import RunConfig
from bids_w2v.errors import InputError
from bids_w2v.inputs.filters import CollectOptions
from bids_w2v.inputs.layout import collect_participants, load_layout, plan_tasks
from bids_w2v.inputs.stimulus_map import read_stimulus_map
from bids_w2v.outputs.metadata import analysis_metadata

SPACE = "MNI152NLin2009cAsym"
AUDIO = "onset\tduration\ttrial_type\tstim_file\n2.0\t3.0\tspeech\ta.wav\n"
SILENT = "onset\tduration\ttrial_type\n2.0\t3.0\tcheckerboard\n"


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _nifti(path: Path, shape: tuple) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.Nifti1Image(np.ones(shape, np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    img.to_filename(path)


def _run(root: Path, stem: str, events: str | None, *, derivatives: bool = True) -> None:
    sub = stem.split("_")[0]
    func, dfunc = root / sub / "func", root / "derivatives" / "fmriprep" / sub / "func"
    _nifti(func / f"{stem}_bold.nii.gz", (2, 2, 2, 10))
    if events is not None:
        (func / f"{stem}_events.tsv").write_text(events)
    if derivatives:
        _nifti(dfunc / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz", (2, 2, 2, 10))
        _nifti(dfunc / f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz", (2, 2, 2))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """sub-01 heard ``listen`` (runs 1, 2) and ``story`` (no run entity), sat a ``rest``
    session (events without stim_file) and a localiser ``loc`` (no events), and heard ``extra``
    (raw data only, no preprocessed BOLD); sub-02 heard only ``story``."""
    root = tmp_path_factory.mktemp("tasks")
    _json(root / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.10.0"})
    _json(root / "derivatives" / "fmriprep" / "dataset_description.json",
          {"Name": "f", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
           "GeneratedBy": [{"Name": "fMRIPrep"}]})  # fmt: skip
    (root / "stimuli").mkdir()
    sf.write(root / "stimuli" / "a.wav", np.zeros(3 * 8000), 8000)
    for task in ("listen", "story", "rest", "loc", "extra"):
        _json(root / f"task-{task}_bold.json", {"RepetitionTime": 2.0, "TaskName": task})
    _run(root, "sub-01_task-story", AUDIO)
    _run(root, "sub-01_task-listen_run-2", AUDIO)
    _run(root, "sub-01_task-listen_run-1", AUDIO)
    _run(root, "sub-01_task-rest", SILENT)
    _run(root, "sub-01_task-loc", None)
    _run(root, "sub-01_task-extra", AUDIO, derivatives=False)
    _run(root, "sub-02_task-story", AUDIO)
    return root


@pytest.fixture(scope="module")
def layout(dataset):
    return load_layout(dataset, dataset / "derivatives" / "fmriprep", validate=True)


def test_every_audio_task_by_default_others_noted(layout):
    plan = plan_tasks(layout, ["01", "02"], SPACE)
    assert plan.subjects == {"01": ("listen", "story"), "02": ("story",)}
    assert plan.tasks == ("listen", "story")
    notes = "\n".join(plan.notes)
    assert "task 'rest' skipped" in notes and "no stim_file" in notes
    assert "task 'loc' skipped" in notes and "no events.tsv" in notes
    assert "sub-01: task(s) extra not fitted" in notes and "no preprocessed BOLD" in notes
    assert "'extra' skipped" not in notes  # it names audio: only sub-01's BOLD is missing


def test_runs_of_several_tasks_in_stated_order(layout):
    """Tasks alphabetical, each task's runs by session and run (whatever the file order)."""
    plan = plan_tasks(layout, ["01", "02"], SPACE)
    runs = collect_participants(layout, ["01", "02"], plan.subjects, SPACE, None)
    assert [r.label for r in runs["01"]] == [
        "sub-01_task-listen_run-1",
        "sub-01_task-listen_run-2",
        "sub-01_task-story",
    ]
    assert [r.label for r in runs["02"]] == ["sub-02_task-story"]
    config = RunConfig(layout.root, Path(layout.root) / "out", "participant")
    meta = analysis_metadata(config, runs["01"])
    assert meta["Tasks"] == ["listen", "story"]
    assert meta["Runs"] == [r.label for r in runs["01"]]
    assert meta["NumberOfScans"] == 30 and "alphabetical" in meta["RunOrder"]


def test_task_chooses(layout):
    plan = plan_tasks(layout, ["01", "02"], SPACE, None, ["task-story"])
    assert plan.subjects == {"01": ("story",), "02": ("story",)}
    assert plan.notes == ()  # the tasks not asked for are not "skipped"
    assert plan_tasks(layout, ["01"], SPACE, None, ["story", "listen"]).subjects == {
        "01": ("listen", "story")
    }
    with pytest.raises(InputError, match=r"sub-02 have no run of the task\(s\) analysed"):
        plan_tasks(layout, ["01", "02"], SPACE, None, ["listen"])


def test_asked_task_without_audio_or_unknown_is_an_error(layout):
    with pytest.raises(InputError, match=r"--task names task\(s\) with no audio.*'rest'"):
        plan_tasks(layout, ["01"], SPACE, None, ["listen", "rest"])
    with pytest.raises(InputError, match=r"Task 'nope' is not in the dataset.*Fix --task"):
        plan_tasks(layout, ["01"], SPACE, None, ["nope"])


def test_stimulus_map_names_the_audio_tasks(layout, tmp_path):
    path = tmp_path / "map.tsv"
    path.write_text("task\tstim_file\tonset\nstory\ta.wav\t2\n")
    options = CollectOptions(stimulus_map=read_stimulus_map(path), stimulus_map_file=path)
    plan = plan_tasks(layout, ["01", "02"], SPACE, None, (), options)
    assert plan.subjects == {"01": ("story",), "02": ("story",)}
    assert any("'listen' skipped: the --stimulus-map" in n for n in plan.notes)
    path.write_text("task\tstim_file\tonset\nother\ta.wav\t2\n")
    options = CollectOptions(stimulus_map=read_stimulus_map(path), stimulus_map_file=path)
    with pytest.raises(InputError, match=r"No events.tsv \(nor --stimulus-map row\) names"):
        plan_tasks(layout, ["01"], SPACE, None, (), options)


def test_no_audio_task_at_all_is_a_clear_error(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([str(dataset), str(out), "participant", "--task", "rest", "-w", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "no audio" in err and "stim_file" in err and "remove these tasks from --task" in err
