"""Acoustic baselines and --features-dir through the whole participant pipeline: the mel and
envelope spaces are scored and mapped like a model, and their saved features read back with
--features-dir give the same maps."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from bids_w2v.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(sim_dataset, tmp_path_factory):
    root, _, _ = sim_dataset
    common = ["participant", "--participant-label", "01", "--device", "cpu", "--nprocs", "2"]
    direct = tmp_path_factory.mktemp("direct") / "bids-w2v"
    args = [str(root), str(direct), *common, "--model", "mel", "envelope", "--save-features"]
    assert main([*args, "-w", str(tmp_path_factory.mktemp("work"))]) == 0
    again = tmp_path_factory.mktemp("again") / "bids-w2v"
    args = [str(root), str(again), *common, "--features-dir", str(direct)]
    assert main([*args, "-w", str(tmp_path_factory.mktemp("work"))]) == 0
    return direct, again


def _map(out, desc):
    found = sorted((out / "sub-01" / "func").glob(f"*_desc-{desc}_stat-r_statmap.nii.gz"))
    assert len(found) == 1, desc
    meta = json.loads(found[0].with_name(found[0].name[: -len(".nii.gz")] + ".json").read_text())
    return np.asarray(nb.load(found[0]).dataobj, dtype=float), meta


def test_baselines_are_mapped_like_models(runs):
    direct, _ = runs
    for desc, dim in (("melMel", 40), ("envelopeEnvelope", 1)):
        scores, meta = _map(direct, desc)
        assert np.isfinite(scores).any() and meta["ModelType"] in ("mel", "envelope")
        saved = sorted((direct / "stimuli").glob(f"*_desc-{desc}_features.npy"))
        assert saved and np.load(saved[0]).shape[1] == dim


def test_features_dir_reproduces_the_maps(runs):
    direct, again = runs
    for desc in ("melMel", "envelopeEnvelope"):
        a, _ = _map(direct, desc)
        b, meta = _map(again, desc)
        assert meta["ModelType"] == "precomputed"
        np.testing.assert_allclose(b, a, atol=1e-5, equal_nan=True)


def test_missing_features_stop_the_run_before_any_fit(sim_dataset, tmp_path, capsys):
    """One stimulus without features: a one-paragraph error, exit code 2, no traceback."""
    root, _, _ = sim_dataset
    feats = tmp_path / "feats"
    feats.mkdir()
    stimuli = sorted((root / "stimuli").rglob("*.wav"))
    for stim in stimuli[1:]:  # the first stimulus has none
        rel = stim.relative_to(root / "stimuli")
        target = feats / rel.parent / f"{stim.stem}_desc-phonemes_features.npy"
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.zeros((10, 1)))
        target.with_suffix(".json").write_text(json.dumps({"FrameRate": 1.0}))
    args = [str(root), str(tmp_path / "out"), "participant", "--participant-label", "01"]
    args += ["--features-dir", str(feats), "-w", str(tmp_path / "work")]
    assert main(args) == InputError.exit_code
    err = capsys.readouterr().err
    assert "has no features of the space 'phonemes'" in err and "Traceback" not in err
    assert not (tmp_path / "work" / "bids_w2v_wf").exists()
