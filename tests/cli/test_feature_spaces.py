"""--model with encoder families and baselines, --features-dir: the model specs built."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_w2v.cli.build import build_config
from bids_w2v.cli.parser import build_parser
from bids_w2v.errors import InputError


def _config(tmp_path, *flags):
    args = build_parser().parse_args([str(tmp_path), str(tmp_path / "out"), "group", *flags])
    return build_config(args)


def test_baselines_ignore_random_init(tmp_path):
    config = _config(tmp_path, "--model", "wav2vec2-base", "mel", "envelope", "--random-init")
    assert [(m.name, m.random_init) for m in config.models] == [
        ("wav2vec2-base", True),
        ("mel", False),
        ("envelope", False),
    ]


def test_features_dir_adds_its_spaces(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "a_desc-phonemes_features.npy", np.ones((10, 2)))
    (feats / "a_desc-phonemes_features.json").write_text(json.dumps({"FrameRate": 10}))
    only = _config(tmp_path, "--features-dir", str(feats))
    assert [(m.name, m.features_dir) for m in only.models] == [("phonemes", feats)]
    both = _config(tmp_path, "--features-dir", str(feats), "--model", "mel")
    assert [m.name for m in both.models] == ["mel", "phonemes"]
    assert both.models[0].features_dir is None


def test_features_dir_without_features_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        _config(tmp_path, "--features-dir", str(tmp_path / "empty"))
