"""Item features on espeak-ng minimal pairs: the log-mel baseline, a random-init model's layers."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.abx.features import audio_files, logmel_features, model_item_features
from bids_w2v.abx.items import read_items
from bids_w2v.abx.score import score_features
from bids_w2v.errors import InputError


@pytest.mark.slow
def test_logmel_baseline_discriminates_vowels(minimal_pairs):
    item_file, audio_dir = minimal_pairs
    items = read_items(item_file)
    feats = logmel_features(items, audio_files(items, audio_dir))
    assert all(f.shape[1] == 40 and f.shape[0] > 10 for f in feats)
    assert len(items) == 4 * 9 * 2 and items["speaker"].nunique() == 4
    results = score_features(feats, items, distances=("cosine", "angular"))
    for distance in ("cosine", "angular"):
        within, across = results[("within", distance)].error, results[("across", distance)].error
        assert within < 0.05  # chance is 0.5
        assert across < 0.25
        assert within < across  # another voice is harder than the same voice


def test_duplicated_items_score_exactly_zero_within(small_minimal_pairs, tmp_path):
    item_file, audio_dir = small_minimal_pairs
    lines = item_file.read_text().splitlines()
    kept = [line for line in lines[1:] if line.split()[0].endswith("_140")]
    duplicated = tmp_path / "dup.item"
    duplicated.write_text("\n".join([lines[0], *kept, *kept]) + "\n")  # X and A: the same span
    items = read_items(duplicated)
    feats = logmel_features(items, audio_files(items, audio_dir))
    result = score_features(feats, items, modes=("within",))[("within", "cosine")]
    assert result.error == 0.0


@pytest.mark.parametrize("model_input", ["file", "item"])
def test_random_init_model_layers_are_scored(
    small_minimal_pairs, tiny_model, tmp_path, model_input
):
    from bids_w2v.features import load_model

    item_file, audio_dir = small_minimal_pairs
    items = read_items(item_file)
    loaded = load_model(str(tiny_model), random_init=True, seed=3)
    layers = ["conv2", "transformer1"]
    paths = audio_files(items, audio_dir)
    cache = tmp_path / "cache"
    item_layers = model_item_features(
        loaded, items, paths, layers, cache_dir=cache, model_input=model_input
    )
    for layer in layers:
        feats = item_layers[layer]
        assert len(feats) == len(items) and all(f.ndim == 2 and f.shape[0] > 0 for f in feats)
        results = score_features(feats, items)
        assert all(0.0 <= r.error <= 1.0 for r in results.values())
    entries = sorted(p.name for p in cache.rglob("*") if p.is_dir())
    again = model_item_features(loaded, items, paths, layers, cache_dir=cache,
                                model_input=model_input)  # fmt: skip
    np.testing.assert_array_equal(again["conv2"][0], item_layers["conv2"][0])
    assert sorted(p.name for p in cache.rglob("*") if p.is_dir()) == entries  # cache hit


def test_missing_audio_is_named(small_minimal_pairs, tmp_path):
    item_file, _ = small_minimal_pairs
    items = read_items(item_file)
    with pytest.raises(InputError, match="have no audio in") as info:
        audio_files(items, tmp_path)
    assert "AUDIO_DIR" in str(info.value)


def test_span_without_frame_is_refused(small_minimal_pairs, tmp_path):
    item_file, audio_dir = small_minimal_pairs
    lines = item_file.read_text().splitlines()
    name = lines[1].split()[0]
    bad = tmp_path / "bad.item"
    bad.write_text(f"{lines[0]}\n{name} 0.100 0.104 ae b t s\n")
    items = read_items(bad)
    with pytest.raises(InputError, match="hold no feature frame"):
        logmel_features(items, audio_files(items, audio_dir))


def test_logmel_baseline_on_a_small_set(small_minimal_pairs):
    item_file, audio_dir = small_minimal_pairs
    items = read_items(item_file)
    results = score_features(logmel_features(items, audio_files(items, audio_dir)), items)
    assert results[("within", "cosine")].error < 0.1
    assert results[("across", "cosine")].error < 0.35


def test_item_too_short_for_the_model_alone(small_minimal_pairs, tiny_model, tmp_path):
    from bids_w2v.errors import AudioError
    from bids_w2v.features import load_model

    item_file, audio_dir = small_minimal_pairs
    name = item_file.read_text().splitlines()[1].split()[0]
    short = tmp_path / "short.item"
    short.write_text(f"#header\n{name} 0.100 0.115 ae b t s\n")  # 15 ms < receptive field
    items = read_items(short)
    loaded = load_model(str(tiny_model))
    with pytest.raises(AudioError, match="--model-input file") as info:
        model_item_features(loaded, items, audio_files(items, audio_dir), ["conv0"],
                            cache_dir=tmp_path / "c", model_input="item")  # fmt: skip
    assert name in str(info.value)
