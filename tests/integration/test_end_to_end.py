"""End to end: simulated BIDS + fMRIPrep derivatives in, BIDS brain-score maps out.

The tiny wav2vec2 is saved with save_pretrained and loaded through the user's code path; the
planted voxels follow known layers, so the recovery is checked against ground truth.
"""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from tests.integration.helpers import MAPS_PER_PARTICIPANT, assert_recovered, fit_started

REQUIRED = {
    "Model",
    "RandomInit",
    "LayerName",
    "LayerIndex",
    "Statistic",
    "CrossValidation",
    "Alphas",
    "HRF",
    "Sources",
}
pytestmark = pytest.mark.slow  # every test reads (or re-runs) a full pipeline run


@pytest.fixture(scope="module")
def outputs(sim_dataset, group_run):
    """Participant (``--nprocs 2``) then group level, every layer (tests/integration/conftest.py):
    the network stays blocked throughout."""
    root, _, truth = sim_dataset
    out, work = group_run
    return root, out, truth, work


def test_derivative_dataset(outputs):
    _, out, _, _ = outputs
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids-w2v"
    assert len(desc["SourceDatasets"]) == 2
    assert list((out / "logs").glob("config-participant-*.toml"))
    citation = (out / "logs" / "CITATION.md").read_text()
    assert "Millet" in citation and "2 participant(s) (8 run(s)" in citation


def test_participant_maps_and_sidecars(outputs):
    _, out, _, _ = outputs
    for sub in ("01", "02"):
        maps = sorted((out / f"sub-{sub}" / "func").glob("*_stat-r_statmap.nii.gz"))
        assert len(maps) == 9  # conv0-conv6, transformer0-transformer1 of the tiny model
        names = set()
        for m in maps:
            meta = json.loads(m.with_name(m.name.replace(".nii.gz", ".json")).read_text())
            assert REQUIRED <= set(meta)
            assert meta["Statistic"] == "pearson_r" and meta["RandomInit"] is False
            assert meta["LayerName"].lower() in m.name.lower()
            assert len(meta["Alphas"]) == 20
            names.add(meta["LayerName"])
            img = nb.load(m)
            assert img.shape == (5, 5, 4)
            vals = np.asarray(img.dataobj)
            assert np.all(np.abs(vals[np.isfinite(vals)]) <= 1)
        assert names == {f"conv{i}" for i in range(7)} | {"transformer0", "transformer1"}
        peak = next((out / f"sub-{sub}" / "func").glob("*_stat-peaklayer_statmap.nii.gz"))
        meta = json.loads(peak.with_name(peak.name.replace(".nii.gz", ".json")).read_text())
        assert meta["Statistic"] == "peak_layer"
        values = np.asarray(nb.load(peak).dataobj)
        assert set(np.unique(values)) <= set(range(9))
        assert list((out / f"sub-{sub}" / "func").glob("*_stat-alpha_statmap.nii.gz"))
    assert not list(out.rglob("*.tmp*")), "temporary files left behind"


def test_group_maps(outputs):
    _, out, _, _ = outputs
    means = sorted(out.glob("*_stat-meanr_statmap.nii.gz"))
    assert len(means) == 9
    sub_maps = [
        nb.load(next((out / f"sub-{s}" / "func").glob("*Transformer1_stat-r_statmap.nii.gz")))
        for s in ("01", "02")
    ]
    group = nb.load(next(out.glob("*Transformer1_stat-meanr_statmap.nii.gz")))
    expected = np.mean([np.asarray(m.dataobj) for m in sub_maps], axis=0)
    np.testing.assert_allclose(np.asarray(group.dataobj), expected, rtol=1e-5)
    assert list(out.glob("*_stat-peaklayer_statmap.nii.gz"))
    assert list(out.glob("*_stat-circpeaklayer_statmap.nii.gz"))


def test_ground_truth_recovered(outputs):
    """Planted voxels (a truth built without the analysis's code: transformers' hidden states,
    nilearn's HRF at mid-TR, AR(1) noise, artefacts the confounds explain only partly) score
    above chance at their planted layer, and peak within PEAK_TOLERANCE layers of it."""
    _, out, truth, _ = outputs
    for sub in ("01", "02"):
        func = out / f"sub-{sub}" / "func"
        scores, index = {}, {}
        for m in func.glob("*_stat-r_statmap.nii.gz"):
            meta = json.loads(m.with_name(m.name.replace(".nii.gz", ".json")).read_text())
            scores[int(meta["LayerIndex"])] = np.asarray(nb.load(m).dataobj).reshape(-1)
            index[meta["LayerName"]] = int(meta["LayerIndex"])
        stack = np.stack([scores[i] for i in sorted(scores)])
        shape = (5, 5, 4)
        null = np.ones(stack.shape[1], bool)
        planted = {}
        for layer, group in truth.groupby("layer"):
            planted[layer] = np.ravel_multi_index(tuple(group[["i", "j", "k"]].to_numpy().T), shape)
            null[planted[layer]] = False
        for layer, where in planted.items():
            assert_recovered(stack, index[layer], where, null, n_conv=7, label=(sub, layer))
        assert abs(stack[:, null].mean()) < 0.05
        # the planted layers' own scores order the two planted groups
        conv, tr = planted["conv1"], planted["transformer1"]
        assert stack[index["conv1"], conv].mean() > stack[index["conv1"], tr].mean()
        assert stack[index["transformer1"], tr].mean() > stack[index["transformer1"], conv].mean()


def _participant_01(root, out, model, work) -> list[str]:
    """Arguments of a participant-level run of sub-01 with the tiny model."""
    return [str(root), str(out), "participant", "--participant-label", "01",
            "--model", str(model), "-w", str(work)]  # fmt: skip


def test_rerun_resumes_from_work_dir(outputs, tiny_model):
    """A finished run re-runs from the Nipype cache and rewrites identical maps."""
    root, out, _, work = outputs
    target = next((out / "sub-01" / "func").glob("*Conv1_stat-r_statmap.nii.gz"))
    before = np.asarray(nb.load(target).dataobj).copy()
    assert main(_participant_01(root, out, tiny_model, work)) == 0
    np.testing.assert_array_equal(np.asarray(nb.load(target).dataobj), before)


def test_demo_recovery_table(outputs):
    """The demo's table reads the outputs back: planted voxels beat null voxels."""
    from bids_w2v.demo import recovery_table

    root, out, truth, _ = outputs
    table = recovery_table(root, out, truth)
    assert len(table) == 2 * (truth.layer.nunique() + 1)
    planted = table[table.planted_index >= 0]
    null = table[table.planted_index < 0]
    assert planted.r_planted_layer.min() > null.r_best.max() + 0.1
    assert planted.same_block.mean() > 0.55  # chance: 0.5 (7 conv and 2 transformer layers)


def test_participant_reports(outputs):
    """Each participant gets a self-contained HTML report with its figures and methods."""
    _, out, _, _ = outputs
    for sub in ("01", "02"):
        text = (out / f"sub-{sub}.html").read_text()
        assert text.count("data:image/png;base64,") == 3
        assert "transformer1" in text and "Millet" in text and "random init" not in text
        assert "<script" not in text and "http" not in text.split("<h2>Methods")[0]


def test_killed_run_resumes_to_the_same_maps(outputs, tiny_model, tmp_path):
    """SIGKILL in the middle of the fits leaves no map; the re-run completes identical maps."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, ref_out, _, _ = outputs
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, "-m", "bids_w2v", *_participant_01(root, out, tiny_model, work)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if fit_started(work):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL
    assert not list(out.rglob("*.nii.gz")), "a killed run must not leave maps behind"

    assert main(_participant_01(root, out, tiny_model, work)) == 0
    ours = sorted(out.glob("sub-01/func/*_statmap.nii.gz"))
    assert len(ours) == MAPS_PER_PARTICIPANT
    for path in ours:
        ref = ref_out / path.relative_to(out)
        np.testing.assert_array_equal(
            np.asarray(nb.load(path).dataobj), np.asarray(nb.load(ref).dataobj)
        )
