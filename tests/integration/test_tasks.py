"""Every story a participant heard, in one model, end to end: sub-01 heard two stories
(``listen`` and ``tunnel``), sub-02 only ``listen`` and sat a ``rest`` run whose events name no
audio. The participant level fits sub-01's four runs jointly (leave-one-run-out here), sub-02's
two as before; the group level combines them, and the noise ceiling pairs them on ``listen``."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from bids_w2v.testing.tasks import drop_run, retask_run, silence_run

SPACE = "MNI152NLin2009cAsym"


def _sidecar(path):
    return json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())


@pytest.mark.slow
def test_two_stories_fitted_jointly_and_combined_at_group_level(
    sim_dataset, copy_dataset, tiny_model, tmp_path, capsys, network_attempts
):
    _, _, truth = sim_dataset
    root = copy_dataset(sim_dataset[0])
    retask_run(root, "sub-01_task-listen_run-3", "tunnel", "1")
    retask_run(root, "sub-01_task-listen_run-4", "tunnel", "2")
    drop_run(root, "sub-02_task-listen_run-3")
    silence_run(root, retask_run(root, "sub-02_task-listen_run-4", "rest"))
    out, work = tmp_path / "out", tmp_path / "work"
    common = ["--model", str(tiny_model), "-w", str(work)]
    args = ["--layers", "conv1,transformer1", "--cv", "runs", *common]
    assert main([str(root), str(out), "participant", *args]) == 0
    log = capsys.readouterr().out
    assert "task 'rest' skipped" in log and "no stim_file" in log

    joint = sorted(out.glob("sub-01/func/sub-01_task-listenTunnel_*Conv1_stat-r_statmap.nii.gz"))
    single = sorted(out.glob("sub-02/func/sub-02_task-listen_space-*Conv1_stat-r_statmap.nii.gz"))
    assert len(joint) == 1 and len(single) == 1
    meta = _sidecar(joint[0])
    assert meta["Tasks"] == ["listen", "tunnel"]
    assert meta["Runs"] == [
        "sub-01_task-listen_run-1",
        "sub-01_task-listen_run-2",
        "sub-01_task-tunnel_run-1",
        "sub-01_task-tunnel_run-2",
    ]
    assert meta["CrossValidation"]["NFolds"] == 4  # one fold per run: one story run left out
    assert any("task-tunnel_run-2_space-" in s for s in meta["Sources"])
    meta2 = _sidecar(single[0])
    assert meta2["Tasks"] == ["listen"] and meta2["CrossValidation"]["NFolds"] == 2
    assert meta["NumberOfScans"] > 2 * meta2["NumberOfScans"] * 0.9  # both stories' scans

    # the planted voxels are recovered from the four runs of two stories (ground truth written
    # by the simulator, not by the analysis)
    scores = np.asarray(nb.load(joint[0]).dataobj)
    planted = tuple(truth[truth.layer == "conv1"][["i", "j", "k"]].to_numpy().T)
    null = np.ones(scores.shape, bool)
    null[tuple(truth[["i", "j", "k"]].to_numpy().T)] = False
    assert scores[planted].mean() > scores[null].mean() + 0.25

    assert main([str(root), str(out), "group", *common]) == 0
    group = sorted(out.glob("task-listenTunnel_space-*_stat-meanr_statmap.nii.gz"))
    assert len(group) == 2  # conv1, transformer1
    gmeta = _sidecar(group[0])
    assert gmeta["ParticipantTasks"] == {"sub-01": ["listen", "tunnel"], "sub-02": ["listen"]}
    assert gmeta["Tasks"] == ["listen", "tunnel"] and gmeta["NumberOfSubjects"] == 2
    # the noise ceiling pairs the participants on the story both heard, each named as its maps
    ceiling = _sidecar(next(out.glob("sub-01/func/sub-01_task-listenTunnel_*noiseceiling*.gz")))
    assert ceiling["Tasks"] == ["listen"] and ceiling["Partners"] == ["sub-02"]
    assert ceiling["NumberOfScans"] <= meta2["NumberOfScans"]
    assert next(out.glob("sub-02/func/sub-02_task-listen_*_stat-noiseceiling_statmap.nii.gz"))
    assert next(out.glob("task-listenTunnel_*_stat-noiseceiling_statmap.nii.gz"))
    report = (out / "group.html").read_text()
    assert "listen, tunnel" in report
    assert network_attempts == []
