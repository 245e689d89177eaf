"""Tests of bids_w2v.features.cache with a tiny model (no network)."""

from __future__ import annotations

import shutil
from importlib import resources

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

import bids_w2v.features.cache as cache_module
from bids_w2v.errors import AudioError, InputError
from bids_w2v.features import (
    Features,
    cached_features_path,
    extract_features,
    feature_cache_key,
    load_features,
    load_model,
    load_or_extract,
    save_features,
)
from bids_w2v.inputs.audio import load_audio
from bids_w2v.testing.tiny_models import TINY

LAYERS = ["conv3", "transformer1"]
OPTIONS = dict(layers=LAYERS, window_s=4.0, stride_s=2.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny"
    torch.manual_seed(3)
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(model_dir):
    return load_model(model_dir)


@pytest.fixture
def clip(tmp_path):
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        return shutil.copy(folder / "obama_speech.wav", tmp_path / "clip.wav")


def test_cache_hit_returns_same_arrays(tmp_path, tiny, clip, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = load_or_extract(cache_dir, clip, tiny, **OPTIONS)
    key = feature_cache_key(clip, tiny, **OPTIONS)
    assert sorted(p.name for p in cache_dir.iterdir() if not p.name.startswith(".")) == [key]
    assert sorted(p.name for p in (cache_dir / key).iterdir()) == [
        "conv3.npy",
        "features.json",
        "transformer1.npy",
    ]
    assert list(first.layers) == LAYERS and first.frame_rate == 50.0
    assert all(isinstance(first.layers[name], np.memmap) for name in LAYERS)
    in_memory = extract_features(tiny, load_audio(clip), **OPTIONS)
    for name in LAYERS:
        np.testing.assert_array_equal(first.layers[name], in_memory.layers[name])

    def fail(*args, **kwargs):
        raise AssertionError("a cache hit must not extract")

    monkeypatch.setattr(cache_module, "stream_features", fail)
    monkeypatch.setattr(cache_module, "load_audio", fail)
    second = load_or_extract(cache_dir, clip, tiny, **{**OPTIONS, "layers": LAYERS[::-1]})
    assert list(second.layers) == LAYERS[::-1]
    for name in LAYERS:
        np.testing.assert_array_equal(second.layers[name], first.layers[name])


def test_key_depends_on_what_matters(tmp_path, tiny, model_dir, clip):
    key = feature_cache_key(clip, tiny, **OPTIONS)
    assert key == feature_cache_key(clip, tiny, **{**OPTIONS, "layers": LAYERS[::-1]})
    copy = shutil.copy(clip, tmp_path / "renamed.wav")
    assert feature_cache_key(copy, tiny, **OPTIONS) == key  # content, not name
    others = {
        feature_cache_key(clip, tiny, **{**OPTIONS, "stride_s": 1.0}),
        feature_cache_key(clip, tiny, **{**OPTIONS, "window_s": None}),
        feature_cache_key(clip, tiny, **{**OPTIONS, "layers": ["conv3"]}),
        feature_cache_key(clip, load_model(model_dir, random_init=True), **OPTIONS),
        feature_cache_key(clip, load_model(model_dir, random_init=True, seed=1), **OPTIONS),
        feature_cache_key(clip, tiny, causal=True, **OPTIONS),
        feature_cache_key(clip, load_model(model_dir, dtype="bfloat16"), **OPTIONS),
    }
    assert key not in others and len(others) == 7
    with open(copy, "r+b") as handle:  # change one sample
        handle.seek(-2, 2)
        handle.write(b"\x01\x02")
    assert feature_cache_key(copy, tiny, **OPTIONS) != key


def test_corrupt_entry_is_replaced(tmp_path, tiny, clip):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    entry = cache_dir / feature_cache_key(clip, tiny, **OPTIONS)
    entry.mkdir()
    (entry / "features.json").write_text("{truncated")
    feats = load_or_extract(cache_dir, clip, tiny, **OPTIONS)
    assert list(load_features(entry).layers) == list(feats.layers)
    # a layer file cut short (e.g. a full disk) is detected from its size and replaced
    layer_file = entry / "conv3.npy"
    good = layer_file.read_bytes()
    layer_file.write_bytes(good[:-40])
    with pytest.raises(InputError, match="incomplete"):
        load_features(entry)
    again = load_or_extract(cache_dir, clip, tiny, **OPTIONS)
    np.testing.assert_array_equal(again.layers["conv3"], feats.layers["conv3"])
    assert layer_file.read_bytes() == good


def test_save_load_roundtrip_is_atomic(tmp_path):
    features = Features(
        {"transformer0": np.arange(12, dtype=np.float32).reshape(4, 3), "conv0": np.ones((4, 2))},
        frame_rate=50.0,
    )
    path = tmp_path / "sub" / "features"
    save_features(path, features)
    assert sorted(p.name for p in path.parent.iterdir()) == ["features"]
    loaded = load_features(path)
    assert loaded.frame_rate == 50.0 and list(loaded.layers) == ["transformer0", "conv0"]
    np.testing.assert_array_equal(loaded.layers["transformer0"], features.layers["transformer0"])
    assert loaded.layers["conv0"].dtype == np.float32


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_features(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "features.json").write_text('{"x": 1}')
    with pytest.raises(InputError, match="frame_rate"):
        load_features(tmp_path / "other")


def test_unusable_audio_names_the_file(tmp_path, tiny):
    short = tmp_path / "short.wav"
    sf.write(short, np.full(200, 0.1, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="short.wav"):
        load_or_extract(tmp_path / "cache", short, tiny, **OPTIONS)
    with pytest.raises(AudioError, match="absent.wav"):
        load_or_extract(tmp_path / "cache", tmp_path / "absent.wav", tiny, **OPTIONS)


def test_cached_features_path_reads_nothing_on_a_hit(tmp_path, tiny, clip, monkeypatch):
    cache_dir = tmp_path / "cache"
    entry = cached_features_path(cache_dir, clip, tiny, **OPTIONS)
    assert entry == cache_dir / feature_cache_key(clip, tiny, **OPTIONS)
    assert list(load_features(entry).layers) == LAYERS

    def fail(*args, **kwargs):
        raise AssertionError("a cache hit must neither extract nor load the arrays")

    monkeypatch.setattr(cache_module, "stream_features", fail)
    monkeypatch.setattr(cache_module, "load_audio", fail)
    monkeypatch.setattr(cache_module, "load_features", fail)
    assert cached_features_path(cache_dir, clip, tiny, **OPTIONS) == entry


def test_concurrent_jobs_extract_once(tmp_path, model_dir, clip):
    """Two processes asking for the same entry: one extracts, the other waits and reads it."""
    import json
    import subprocess
    import sys

    cache_dir = tmp_path / "cache"
    script = (
        "import json, sys; from bids_w2v.features import load_model, cached_features_path;"
        "import bids_w2v.features.cache as c; real = c.stream_features; calls = [];"
        "c.stream_features = lambda *a, **k: (calls.append(1), real(*a, **k))[1];"
        f"m = load_model({str(model_dir)!r});"
        f"p = cached_features_path({str(cache_dir)!r}, {str(clip)!r}, m, **{OPTIONS!r});"
        "print(json.dumps([str(p), len(calls)]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert results[0][0] == results[1][0]
    assert sorted(calls for _, calls in results) == [0, 1]
    leftovers = [p.name for p in cache_dir.iterdir() if p.name.endswith((".tmp", ".old"))]
    assert leftovers == []
