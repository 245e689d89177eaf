"""--joint end to end: two layers of the tiny model in one banded ridge, participant and group.

Ground truth: the simulated dataset plants voxels that follow conv1 and others that follow
transformer1 (bids_w2v.testing.simulator); each layer's unique variance should be larger where
that layer was planted.
"""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main

pytestmark = pytest.mark.slow
SPACE = "MNI152NLin2009cAsym"


def test_joint_participant_and_group(sim_dataset, tiny_model, tmp_path):
    root, spec, truth = sim_dataset
    out, work = tmp_path / "bids-w2v", tmp_path / "work"
    common = [
        "--model", str(tiny_model), "-w", str(work), "--nprocs", "2",
        "--layers", "conv1,transformer1", "--no-participant-stats",
        "--joint", f"{tiny_model}:conv1", f"{tiny_model}:transformer1", "--joint-n-iter", "5",
    ]  # fmt: skip
    assert main([str(root), str(out), "participant", *common]) == 0
    func = out / "sub-01" / "func"
    joint = sorted(func.glob("*_desc-joint*_stat-r2_statmap.nii.gz"))
    assert len(joint) == 1
    meta = json.loads(joint[0].with_name(joint[0].name.replace(".nii.gz", ".json")).read_text())
    descs = [s["Desc"] for s in meta["JointModel"]["FeatureSpaces"]]
    assert [s["LayerName"] for s in meta["JointModel"]["FeatureSpaces"]] == [
        "conv1",
        "transformer1",
    ]
    assert meta["JointModel"]["RandomSearchDraws"] == 5
    unique = {}
    for d in descs:
        stem = f"sub-01_task-listen_space-{SPACE}_desc-unique{d[:1].upper()}{d[1:]}_stat-r2"
        img = nb.load(func / f"{stem}_statmap.nii.gz")
        unique[d] = img.get_fdata()
    u_conv, u_tr = (unique[d] for d in descs)
    region = {
        layer: tuple(truth[truth.layer == layer][["i", "j", "k"]].to_numpy().T)
        for layer in ("conv1", "transformer1")
    }
    assert np.nanmean(u_conv[region["conv1"]]) > np.nanmean(u_conv[region["transformer1"]])
    assert np.nanmean(u_tr[region["transformer1"]]) > np.nanmean(u_tr[region["conv1"]])
    assert "Joint model" in (out / "sub-01.html").read_text()

    assert main([str(root), str(out), "group", *common, "--no-noise-ceiling"]) == 0
    for d in descs:
        for stat in ("meanr2", "p", "q", "meanr2thresh"):
            name = f"task-listen_space-{SPACE}_desc-unique{d[:1].upper()}{d[1:]}_stat-{stat}"
            assert (out / f"{name}_statmap.nii.gz").exists(), name
    report = (out / "group.html").read_text()
    assert "Joint model (--joint), group mean" in report
    assert "banded ridge" in (out / "logs" / "CITATION.md").read_text()
