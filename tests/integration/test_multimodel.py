"""Several speech models in one run: one extraction and one set of fits per model, maps kept
apart by model label, features saved as derivatives (--save-features)."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from bids_w2v.features import extract_features, load_model, spec_label
from bids_w2v.inputs.audio import load_audio

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_models(sim_dataset, tiny_model, tmp_path_factory):
    root, _, truth = sim_dataset
    out = tmp_path_factory.mktemp("out") / "bids-w2v"
    work = tmp_path_factory.mktemp("work")
    args = [str(root), str(out), "participant", "--participant-label", "01"]
    args += ["--model", str(tiny_model), f"{tiny_model}:random", "--layers", "transformer1"]
    # seed 1: the tiny "trained" model is itself a seed-0 initialisation
    args += ["-w", str(work), "--save-features", "--device", "cpu", "--seed", "1"]
    assert main(args) == 0
    return root, out, truth


def test_maps_are_kept_apart_by_model(two_models, tiny_model):
    root, out, truth = two_models
    trained, random = spec_label(str(tiny_model)), spec_label(str(tiny_model), True)
    assert random == trained + "Random"
    func = out / "sub-01" / "func"
    maps = {}
    for label in (trained, random):
        found = sorted(func.glob(f"*_desc-{label}Transformer1_stat-r_statmap.nii.gz"))
        assert len(found) == 1, (label, sorted(p.name for p in func.iterdir()))
        meta = json.loads(
            found[0].with_name(found[0].name[: -len(".nii.gz")] + ".json").read_text()
        )
        assert meta["ModelLabel"] == label and meta["RandomInit"] is (label == random)
        maps[label] = np.asarray(nb.load(found[0]).dataobj, dtype=float)
        assert len(list(func.glob(f"*_desc-{label}_stat-peaklayer_statmap.nii.gz"))) == 1
    # the planted voxels follow the trained model's transformer1: its twin explains them worse
    planted = truth[truth.layer == "transformer1"]
    idx = (planted.i.to_numpy(), planted.j.to_numpy(), planted.k.to_numpy())
    assert np.nanmean(maps[trained][idx]) > np.nanmean(maps[random][idx]) + 0.1
    assert (out / "sub-01.html").is_file()


def test_saved_features(two_models, tiny_model):
    root, out, _ = two_models
    stimuli = sorted((root / "stimuli").glob("*.wav"))
    loaded = load_model(str(tiny_model))
    for stim in stimuli[:2]:
        path = out / "stimuli" / f"{stim.stem}_desc-{loaded.label}Transformer1_features.npy"
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["FrameRate"] == 50.0 and meta["Layer"] == "transformer1"
        assert meta["WeightsSHA256"] == loaded.weights_sha256 and meta["Causal"] is False
        saved = np.load(path)
        assert list(meta["Shape"]) == list(saved.shape)
        ref = extract_features(loaded, load_audio(stim), layers=["transformer1"])
        np.testing.assert_allclose(saved, ref.layers["transformer1"], atol=1e-5)
        random_twin = path.with_name(path.name.replace(loaded.label, loaded.label + "Random"))
        assert random_twin.is_file()
    assert not list(out.rglob("*.tmp*"))


def test_colliding_labels_are_refused(tmp_path, sim_dataset, tiny_model, capsys):
    root, _, _ = sim_dataset
    args = [str(root), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w")]
    code = main([*args, "--model", str(tiny_model), str(tiny_model)])
    assert code != 0
    assert "would both write their maps" in capsys.readouterr().err
