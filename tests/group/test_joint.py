"""Variance-partitioning maps: participant writing, group test, report (--joint)."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest
from scipy import stats

from bids_w2v.errors import InputError
from bids_w2v.group.joint import collect_joint_maps, write_group_joint_maps
from bids_w2v.outputs.joint_maps import write_joint_maps
from bids_w2v.reports.joint import joint_section

SPACES = ["wav2vec2base", "wav2vec2base", "mel"]
LAYERS = ["transformer6", "conv1", "mel"]


def _mask():
    data = np.zeros((4, 4, 3), dtype=np.uint8)
    data[1:3, 1:3, :] = 1  # 12 voxels
    return nb.Nifti1Image(data, np.eye(4))


def _result(rng, n_vox=12):
    unique = rng.normal(0.02, 0.01, (3, n_vox))
    unique[0, :6] += 0.1  # the first space explains the first half alone
    r2 = unique.sum(0) + 0.05
    return {
        "spaces": np.array(SPACES),
        "layers": np.array(LAYERS),
        "r2": r2,
        "fold_r2": np.stack([r2, r2]),
        "r2_without": r2[None] - unique,
        "unique": unique,
        "shared": r2 - unique.sum(0),
        "excluded": np.zeros(n_vox, bool),
    }


def test_participant_and_group_maps(tmp_path):
    rng = np.random.default_rng(0)
    results = {}
    common = dict(output_dir=tmp_path, task="listen", space="MNI", res=None)
    for sub in ("01", "02", "03", "04", "05", "06"):
        results[sub] = _result(rng)
        write_joint_maps(
            results[sub],
            _mask(),
            subject=sub,
            metadata={"Alphas": [1.0]},
            joint_info={"RandomSearchDraws": 20},
            **common,
        )
    func = tmp_path / "sub-01" / "func"
    names = sorted(p.name for p in func.glob("*.nii.gz"))
    assert len(names) == 2 + 2 * 3
    stem = "sub-01_task-listen_space-MNI_desc-"
    assert (
        f"{stem}jointWav2vec2baseTransformer6Wav2vec2baseConv1Mel_stat-r2_statmap.nii.gz" in names
    )
    assert f"{stem}uniqueMel_stat-r2_statmap.nii.gz" in names
    assert f"{stem}withoutWav2vec2baseConv1_stat-r2_statmap.nii.gz" in names
    side = json.loads((func / f"{stem}uniqueMel_stat-r2_statmap.json").read_text())
    assert side["Statistic"] == "unique_r2" and side["FeatureSpace"]["ModelLabel"] == "mel"
    assert side["JointModel"]["RandomSearchDraws"] == 20 and side["Alphas"] == [1.0]

    files = write_group_joint_maps(tmp_path, task="listen", space="MNI", res=None)
    group = {p.name for p in files}
    desc = "task-listen_space-MNI_desc-uniqueWav2vec2baseTransformer6"
    for stat in ("meanr2", "p", "q", "meanr2thresh"):
        assert f"{desc}_stat-{stat}_statmap.nii.gz" in group
    mask = _mask().get_fdata() > 0
    unique = np.stack([results[s]["unique"][0] for s in sorted(results)])
    mean = nb.load(tmp_path / f"{desc}_stat-meanr2_statmap.nii.gz").get_fdata()[mask]
    np.testing.assert_allclose(mean, unique.mean(0), atol=1e-6)
    p = nb.load(tmp_path / f"{desc}_stat-p_statmap.nii.gz").get_fdata()[mask]
    np.testing.assert_allclose(p, stats.wilcoxon(unique, axis=0).pvalue, rtol=1e-5)
    q = nb.load(tmp_path / f"{desc}_stat-q_statmap.nii.gz").get_fdata()[mask]
    np.testing.assert_allclose(q, stats.false_discovery_control(p, method="bh"), rtol=1e-5)
    # the joint r2 is averaged, not tested
    assert (
        "task-listen_space-MNI_desc-sharedWav2vec2baseTransformer6Wav2vec2baseConv1Mel"
        "_stat-meanr2_statmap.nii.gz" in group
    )
    assert not any("desc-joint" in n and "stat-p_" in n for n in group)

    # report: one figure per pair of the three spaces, for a participant and for the group
    html = joint_section(func.glob("*_statmap.nii.gz"))
    assert html.count("<img") == 3 and "wav2vec2baseConv1 and mel" in html
    html = joint_section(tmp_path.glob("task-*_stat-meanr2_statmap.nii.gz"))
    assert html.count("<img") == 3
    assert joint_section([]) == ""


def test_damaged_joint_sidecar_is_one_paragraph(tmp_path):
    """A truncated joint-model sidecar: the same error as a brain-score map's, naming it."""
    rng = np.random.default_rng(0)
    for sub in ("01", "02"):
        write_joint_maps(
            _result(rng), _mask(), subject=sub, metadata={}, joint_info={},
            output_dir=tmp_path, task="listen", space="MNI", res=None,
        )  # fmt: skip
    found = collect_joint_maps(tmp_path, "listen", "MNI", None)
    assert len(found) == 8 and all(len(maps) == 2 for maps in found.values())
    assert collect_joint_maps(tmp_path, "story", "MNI", None) == {}
    assert collect_joint_maps(tmp_path, "listen", "MNI", None, ["02"])["uniqueMel"][0][0] == "02"
    func = tmp_path / "sub-02" / "func"
    sidecar = func / "sub-02_task-listen_space-MNI_desc-uniqueMel_stat-r2_statmap.json"
    sidecar.write_text(sidecar.read_text()[:20])
    with pytest.raises(InputError, match=r"1 participant-level file\(s\) cannot be read: .*"
                       r"uniqueMel_stat-r2_statmap.json cannot be read as JSON"):
        collect_joint_maps(tmp_path, "listen", "MNI", None)
