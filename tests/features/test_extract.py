"""Tests of bids_w2v.features.extract against plain transformers forward passes (tiny models)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from bids_w2v.errors import AudioError, InputError
from bids_w2v.features import (
    available_layers,
    extract_features,
    load_model,
    model_hop,
    plan_windows,
    receptive_field,
)
from bids_w2v.inputs.audio import load_audio
from bids_w2v.testing.tiny_models import TINY

ALL = [f"conv{i}" for i in range(7)] + ["transformer0", "transformer1"]


def _load(folder, **config):
    torch.manual_seed(7)
    Wav2Vec2Model(Wav2Vec2Config(**TINY, **config)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return load_model(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _load(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def tiny_layernorm(tmp_path_factory):
    """Conv front end without GroupNorm: conv frames only depend on their receptive field."""
    folder = tmp_path_factory.mktemp("models") / "tiny-ln"
    return _load(folder, feat_extract_norm="layer", do_stable_layer_norm=True)


@pytest.fixture(scope="module")
def obama():
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        return load_audio(folder / "obama_speech.wav")


@pytest.fixture(scope="module")
def barber():
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        return load_audio(folder / "barber.wav")


def _full_pass(loaded, audio):
    """Reference: transformers' own normalisation and hidden states, conv outputs by hooks."""
    values = Wav2Vec2FeatureExtractor(do_normalize=True)(audio, sampling_rate=16000).input_values
    x = torch.tensor(np.asarray(values), dtype=torch.float32).reshape(1, -1)
    convs = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: convs.append(o[0].T.numpy()))
        for layer in loaded.model.feature_extractor.conv_layers
    ]
    with torch.inference_mode():
        out = loaded.model(x, output_hidden_states=True)
    for hook in hooks:
        hook.remove()
    n_frames = out.last_hidden_state.shape[1]
    ref = {f"transformer{i}": h[0].numpy() for i, h in enumerate(out.hidden_states[1:])}
    strides = loaded.model.config.conv_stride
    for i, conv in enumerate(convs):  # (time, channels) at the layer's own rate
        k = int(np.prod(strides[i + 1 :]))
        ref[f"conv{i}"] = conv[: n_frames * k].reshape(n_frames, k, -1).mean(axis=1)
    return ref, n_frames


def test_geometry(tiny):
    assert (model_hop(tiny.model), receptive_field(tiny.model)) == (320, 400)
    assert available_layers(tiny) == ALL


@pytest.mark.parametrize("window_s", [None, 20.0])
def test_window_covering_clip_equals_full_pass(tiny, obama, window_s):
    feats = extract_features(tiny, obama, layers=ALL, window_s=window_s, stride_s=5.0)
    ref, n_frames = _full_pass(tiny, obama)
    assert feats.frame_rate == 50.0 and feats.n_frames == n_frames
    assert list(feats.layers) == ALL
    for name in ALL:
        assert feats.layers[name].dtype == np.float32
        np.testing.assert_allclose(feats.layers[name], ref[name], atol=1e-4, rtol=1e-4)


def test_long_clip_windowed_shapes(tiny, barber):
    feats = extract_features(tiny, barber, layers=ALL, window_s=10.0, stride_s=5.0, batch_size=3)
    n_frames = int(tiny.model._get_feat_extract_output_lengths(barber.shape[0]))
    assert feats.n_frames == n_frames == barber.shape[0] // 320
    for name in ALL:
        assert feats.layers[name].shape == (n_frames, 16 if name.startswith("conv") else 32)
        assert np.isfinite(feats.layers[name]).all()
    np.testing.assert_allclose(np.arange(3) / feats.frame_rate, [0.0, 0.02, 0.04])


def test_conv_layers_are_aligned_across_windows(tiny_layernorm, barber):
    """With local convolutions every window gives the full-pass conv frames at its offset."""
    audio = barber[: 16000 * 23 + 123]
    feats = extract_features(tiny_layernorm, audio, layers=ALL[:7], window_s=4.0, stride_s=1.5)
    ref, n_frames = _full_pass(tiny_layernorm, audio)
    for name in ALL[:7]:
        assert feats.layers[name].shape[0] == n_frames
        np.testing.assert_allclose(feats.layers[name], ref[name], atol=1e-4, rtol=1e-4)


def test_overlapping_frames_are_averaged(tiny, obama):
    audio = obama[: 3 * 16000]
    feats = extract_features(tiny, audio, layers=["transformer1"], window_s=2.0, stride_s=1.0)
    norm = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    with torch.inference_mode():
        first, second = (
            tiny.model(torch.tensor(norm[s : s + 32000])[None]).last_hidden_state[0].numpy()
            for s in (0, 16000)
        )
    assert first.shape[0] == 99 and feats.n_frames == 149
    expected = np.zeros((149, 32), dtype=np.float32)
    expected[:50] = first[:50]
    expected[50:99] = (first[50:] + second[:49]) / 2
    expected[99:] = second[49:]
    np.testing.assert_allclose(feats.layers["transformer1"], expected, atol=1e-5)


def test_layer_subsets_and_batch_size(tiny, obama):
    full = extract_features(tiny, obama, layers=ALL, window_s=3.0, stride_s=1.0, batch_size=4)
    for layers in (["transformer0"], ["conv2"], ["conv6", "conv0"]):
        part = extract_features(
            tiny, obama, layers=layers, window_s=3.0, stride_s=1.0, batch_size=1
        )
        assert list(part.layers) == layers
        for name in layers:
            np.testing.assert_allclose(part.layers[name], full.layers[name], atol=1e-5)


def test_progress_bar(tiny, obama, capsys):
    extract_features(tiny, obama, layers=["conv0"], window_s=4.0, stride_s=2.0, progress=True)
    err = capsys.readouterr().err
    seconds = obama.shape[0] / 16000
    assert f"{seconds:.1f}/{seconds:.1f} s audio" in err and "RTF " in err
    extract_features(tiny, obama, layers=["conv0"], window_s=4.0, stride_s=2.0)
    assert capsys.readouterr().err == ""


def test_causal_frames_ignore_the_future(tiny, obama):
    """Changing the audio after a stride boundary leaves every earlier-finished frame as is."""
    options = dict(layers=ALL, window_s=3.0, stride_s=0.5, causal=True, batch_size=3)
    feats = extract_features(tiny, obama, **options)
    n_frames = int(tiny.model._get_feat_extract_output_lengths(obama.shape[0]))
    assert feats.n_frames == n_frames
    cut = 4 * 16000  # a multiple of the stride
    changed = obama.copy()
    changed[cut:] = np.random.default_rng(0).normal(0, 0.3, obama.shape[0] - cut)
    other = extract_features(tiny, changed, **options)
    past = (cut - 400) // 320 + 1  # frames whose receptive field ends by the cut
    for name in ALL:
        np.testing.assert_allclose(other.layers[name][:past], feats.layers[name][:past], atol=1e-5)
        assert not np.allclose(other.layers[name][past + 25 :], feats.layers[name][past + 25 :])
    # and the frames of a window are those of a plain forward pass over that window alone
    start, end = 2 * 16000, 5 * 16000
    x = obama[start:end]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.inference_mode():
        ref = tiny.model(torch.tensor(x)[None]).last_hidden_state[0].numpy()
    first = (4 * 16000 + 8000 - 400) // 320 + 1  # not yet complete in the window ending at 4.5 s
    rows = slice(first, end // 320 - 1)  # frames completed by the window ending at 5 s
    np.testing.assert_allclose(
        feats.layers["transformer1"][rows], ref[rows.start - 100 : rows.stop - 100], atol=1e-4
    )


def test_causal_differs_from_acausal_and_needs_a_window(tiny, obama):
    options = dict(layers=["transformer1"], window_s=3.0, stride_s=1.0)
    causal = extract_features(tiny, obama, causal=True, **options)
    acausal = extract_features(tiny, obama, **options)
    assert causal.n_frames == acausal.n_frames
    assert not np.allclose(causal.layers["transformer1"], acausal.layers["transformer1"])
    with pytest.raises(InputError, match="Causal extraction needs a window"):
        extract_features(tiny, obama, layers=ALL, window_s=None, causal=True)


def test_reduced_precision(tiny, tmp_path, obama):
    from bids_w2v.features.models import resolve_device

    folder = tmp_path / "tiny"
    torch.manual_seed(7)
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    bf16 = load_model(folder, dtype="bfloat16")
    assert bf16.dtype == "bfloat16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert bf16.weights_sha256 == tiny.weights_sha256  # hashed in float32, before the cast
    low = extract_features(bf16, obama, layers=["transformer1"], window_s=4.0, stride_s=2.0)
    ref = extract_features(tiny, obama, layers=["transformer1"], window_s=4.0, stride_s=2.0)
    a, b = low.layers["transformer1"], ref.layers["transformer1"]
    assert a.dtype == np.float32 and not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    with pytest.raises(InputError, match="float16 needs a CUDA GPU"):
        load_model(folder, dtype="float16")
    with pytest.raises(InputError, match="Unknown dtype"):
        load_model(folder, dtype="int8")
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="Unknown device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            load_model(folder, device="cuda")


def test_errors(tiny, obama):
    with pytest.raises(AudioError, match="receptive field"):
        extract_features(tiny, obama[:399], layers=ALL)
    extract_features(tiny, obama[:400], layers=ALL)  # exactly one frame
    with pytest.raises(AudioError, match="1-D"):
        extract_features(tiny, np.stack([obama, obama]), layers=ALL)
    with pytest.raises(InputError, match="transformer0-transformer1"):
        extract_features(tiny, obama, layers=["transformer5"])
    with pytest.raises(InputError, match="stride"):
        extract_features(tiny, obama, layers=ALL, window_s=2.0, stride_s=3.0)
    with pytest.raises(InputError, match="too short"):
        extract_features(tiny, obama, layers=ALL, window_s=0.01, stride_s=0.01)


def test_plan_windows():
    hop, field = 320, 400
    assert plan_windows(1000, None, 320, hop, field) == [(0, 1000)]
    assert plan_windows(1000, 2000, 320, hop, field) == [(0, 1000)]
    assert plan_windows(160000, 160000, 80000, hop, field) == [(0, 160000)]
    assert plan_windows(230000, 160000, 80000, hop, field) == [(0, 160000), (80000, 230000)]
    bounds = plan_windows(250000, 160000, 80000, hop, field)
    assert bounds == [(0, 160000), (80000, 240000), (160000, 250000)]
    bounds = plan_windows(400000, 160000, 80000, hop, field)
    assert bounds == [(0, 160000), (80000, 240000), (160000, 320000), (240000, 400000)]
    # a last piece too short to give a frame is replaced by a window ending at the end
    bounds = plan_windows(160100, 80000, 80000, hop, field)
    assert bounds[:2] == [(0, 80000), (80000, 160000)]
    start, end = bounds[2]
    assert end == 160100 and start % hop == 0 and 80000 - hop < end - start <= 80000
