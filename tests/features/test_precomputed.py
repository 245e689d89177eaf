"""--features-dir: precomputed features validated and read back as feature spaces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from bids_w2v.errors import InputError
from bids_w2v.features import load_features
from bids_w2v.features.precomputed import (
    check_precomputed,
    find_feature_spaces,
    precomputed_entries,
)

SR = 16000


@pytest.fixture
def dataset(tmp_path):
    """Two 3 s stimuli (one in a subfolder) and hand-made features at 10 Hz."""
    stim_dir = tmp_path / "stimuli"
    (stim_dir / "sub").mkdir(parents=True)
    stimuli = [stim_dir / "a.wav", stim_dir / "sub" / "b.wav"]
    for path in stimuli:
        sf.write(path, np.full(3 * SR, 0.1, np.float32), SR)
    feats = tmp_path / "feats"
    rng = np.random.default_rng(0)
    arrays = {}
    for rel in ("a", "sub/b"):
        arrays[rel] = rng.standard_normal((30, 4)).astype(np.float32)
        _write(feats / f"{rel}_desc-phonemes_features.npy", arrays[rel], {"FrameRate": 10})
    return stim_dir, [str(p) for p in stimuli], feats, arrays


def _write(path, array, meta):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    path.with_suffix(".json").write_text(json.dumps(meta))


def test_hand_made_features_enter_as_a_space(dataset, tmp_path):
    stim_dir, stimuli, feats, arrays = dataset
    assert list(find_feature_spaces(feats)) == ["phonemes"]
    entries, layers, indices, info = precomputed_entries(
        feats, "phonemes", stimuli, stim_dir, tmp_path / "cache"
    )
    assert layers == ["phonemes"] and indices == [0] and info["FrameRate"] == 10.0
    for entry, rel in zip(entries, ("a", "sub/b"), strict=True):
        read = load_features(entry)
        assert read.frame_rate == 10.0
        np.testing.assert_array_equal(read.layers["phonemes"], arrays[rel])


def test_save_features_layout_is_read_back(tmp_path, dataset):
    """Files as --save-features writes them: ModelLabel and Layer group layers in one space."""
    stim_dir, stimuli, _, _ = dataset
    root = tmp_path / "deriv"
    (root / "stimuli").mkdir(parents=True)
    (root / "dataset_description.json").write_text("{}")
    for rel in ("a", "sub/b"):
        for i, layer in enumerate(("transformer0", "transformer1")):
            meta = {"FrameRate": 50.0, "ModelLabel": "tiny", "Layer": layer, "LayerIndex": 7 + i}
            desc = "tiny" + layer.capitalize()
            _write(root / "stimuli" / f"{rel}_desc-{desc}_features.npy", np.ones((149, 3)), meta)
    spaces = find_feature_spaces(root)
    assert list(spaces) == ["tiny"]
    _, layers, indices, _ = precomputed_entries(root, "tiny", stimuli, stim_dir, tmp_path / "c")
    assert layers == ["transformer0", "transformer1"] and indices == [7, 8]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "sub" / "b_desc-phonemes_features.npy").unlink(), "is missing"),
        (lambda f: np.save(f / "a_desc-phonemes_features.npy", np.ones(30)), "2-D array"),
        (lambda f: np.save(f / "a_desc-phonemes_features.npy", np.ones((80, 4))), "spans 8.00 s"),
        (
            lambda f: np.save(f / "a_desc-phonemes_features.npy", np.full((30, 4), np.nan)),
            "non-finite",
        ),
        (
            lambda f: (f / "a_desc-phonemes_features.json").write_text('{"FrameRate": 0}'),
            "positive number FrameRate",
        ),
        (lambda f: (f / "a_desc-phonemes_features.json").unlink(), "no JSON sidecar"),
    ],
)
def test_bad_features_are_refused(dataset, tmp_path, damage, message):
    stim_dir, stimuli, feats, _ = dataset
    damage(feats)
    with pytest.raises(InputError, match=message):
        precomputed_entries(feats, "phonemes", stimuli, stim_dir, tmp_path / "cache")


def test_links_outside_the_folder_are_refused(dataset, tmp_path):
    stim_dir, stimuli, feats, arrays = dataset
    outside = tmp_path / "elsewhere.npy"
    np.save(outside, arrays["a"])
    target = feats / "a_desc-phonemes_features.npy"
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(InputError, match="outside the --features-dir"):
        precomputed_entries(feats, "phonemes", stimuli, stim_dir, tmp_path / "cache")


def test_empty_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        find_feature_spaces(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        find_feature_spaces(tmp_path / "empty")


def test_check_before_any_fit_writes_nothing(dataset, tmp_path):
    stim_dir, stimuli, feats, _ = dataset
    check_precomputed(feats, "phonemes", stimuli, stim_dir)
    (feats / "sub" / "b_desc-phonemes_features.npy").unlink()
    with pytest.raises(InputError, match="for the stimulus 'sub/b.wav'"):
        check_precomputed(feats, "phonemes", stimuli, stim_dir)
    assert not (tmp_path / "cache").exists()
