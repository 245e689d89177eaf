"""Every encoder family's layers equal transformers' own ``output_hidden_states``.

The references are computed here with transformers alone (its feature extractors, its forward
pass with ``output_hidden_states=True``) over the same windows, placed at their frames and
averaged where windows overlap, independently of bids_w2v's extraction code.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch
import transformers as tf

from bids_w2v.errors import InputError, ModelError
from bids_w2v.features import available_layers, extract_features, load_model
from bids_w2v.inputs.audio import load_audio
from bids_w2v.testing.tiny_models import FAMILIES, TINY_WHISPER_CONTEXT_S, save_tiny

HOP = 320


@pytest.fixture(scope="module")
def clip():
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        return load_audio(folder / "obama_speech.wav")[: 16000 * 4 + 77]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {family: save_tiny(family, root / family, seed=3) for family in FAMILIES}


def _reference(folder, family, audio, windows):
    """transformers' hidden states of each window, averaged over overlapping windows."""
    if family == "whisper":
        model = tf.WhisperModel.from_pretrained(folder).encoder.eval()
        extractor = tf.WhisperFeatureExtractor.from_pretrained(folder)
    elif family == "wav2vec2-bert":
        model = tf.Wav2Vec2BertModel.from_pretrained(folder).eval()
        extractor = tf.SeamlessM4TFeatureExtractor.from_pretrained(folder)
    else:
        model = tf.AutoModel.from_pretrained(folder).eval()
        extractor = None
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # whole stimulus, once
    n_layers = (
        model.config.encoder_layers if family == "whisper" else model.config.num_hidden_layers
    )
    sums = [np.zeros((len(audio) // HOP + 2, 32)) for _ in range(n_layers)]
    counts = np.zeros(len(audio) // HOP + 2)
    for start, end in windows:
        piece = audio[start:end]
        with torch.inference_mode():
            if extractor is None:
                out = model(torch.tensor(piece[None]), output_hidden_states=True)
            else:
                feats = extractor(piece, sampling_rate=16000, return_tensors="pt")
                out = model(feats["input_features"], output_hidden_states=True)
        keep = (end - start) // HOP if family == "whisper" else out.hidden_states[1].shape[1]
        offset = start // HOP
        counts[offset : offset + keep] += 1
        for i in range(n_layers):
            sums[i][offset : offset + keep] += out.hidden_states[i + 1][0, :keep].numpy()
    n = int((counts > 0).sum())
    return {f"transformer{i}": sums[i][:n] / counts[:n, None] for i in range(n_layers)}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_layers_equal_hidden_states(tiny, clip, family):
    loaded = load_model(tiny[family])
    layers = [name for name in available_layers(loaded) if name.startswith("transformer")]
    feats = extract_features(loaded, clip, layers=layers, window_s=2.0, stride_s=1.0)
    # windows of 2 s every 1 s: the last one runs from 3 s to the end of the clip
    windows = [(0, 32000), (16000, 48000), (32000, 64000), (48000, clip.shape[0])]
    ref = _reference(tiny[family], family, clip, windows)
    assert feats.frame_rate == 50.0
    for name in layers:
        assert feats.layers[name].shape == ref[name].shape, name
        np.testing.assert_allclose(feats.layers[name], ref[name], atol=2e-4, rtol=1e-3)


def test_layer_names_are_stable(tiny):
    names = {family: available_layers(load_model(tiny[family])) for family in FAMILIES}
    waveform = [f"conv{i}" for i in range(7)] + ["transformer0", "transformer1"]
    for family in ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer"):
        assert names[family] == waveform
    assert names["whisper"] == ["conv0", "conv1", "transformer0", "transformer1"]
    assert names["wav2vec2-bert"] == ["transformer0", "transformer1"]


def test_whisper_conv_layers(tiny, clip):
    """conv0/conv1 are the GELU outputs of Whisper's convolutions at 50 frames per second."""
    loaded = load_model(tiny["whisper"])
    audio = clip[: 16000 * 3]
    feats = extract_features(loaded, audio, layers=["conv0", "conv1"], window_s=3.0, stride_s=3.0)
    encoder = tf.WhisperModel.from_pretrained(tiny["whisper"]).encoder.eval()
    x = tf.WhisperFeatureExtractor.from_pretrained(tiny["whisper"])(
        audio, sampling_rate=16000, return_tensors="pt"
    )["input_features"]
    with torch.inference_mode():
        c0 = torch.nn.functional.gelu(encoder.conv1(x))[0].T.numpy()
        c1 = torch.nn.functional.gelu(encoder.conv2(torch.from_numpy(c0.T[None])))[0].T.numpy()
    n = audio.shape[0] // HOP
    np.testing.assert_allclose(
        feats.layers["conv0"], c0[: 2 * n].reshape(n, 2, -1).mean(1), atol=1e-4
    )
    np.testing.assert_allclose(feats.layers["conv1"], c1[:n], atol=1e-4)


def test_whisper_window_longer_than_context_is_refused(tiny, clip):
    loaded = load_model(tiny["whisper"])
    for window in (None, TINY_WHISPER_CONTEXT_S + 1.0):
        with pytest.raises(InputError, match="fixed context"):
            extract_features(loaded, clip, layers=["transformer0"], window_s=window)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, family, n_layers",
    [("whisper-base", "whisper", 8), ("facebook/w2v-bert-2.0", "wav2vec2-bert", 24)],
)
def test_random_init_from_shipped_config(name, family, n_layers, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing cached: the shipped config
    loaded = load_model(name, random_init=True, seed=1)
    assert loaded.model_type == family and loaded.random_init
    assert len(available_layers(loaded)) == n_layers
    assert loaded.processor is not None and loaded.sampling_rate == 16000


@pytest.mark.slow
def test_random_init_of_each_family_from_its_config(tiny):
    for family in FAMILIES:
        a = load_model(tiny[family], random_init=True, seed=5)
        b = load_model(tiny[family], random_init=True, seed=5)
        assert a.weights_sha256 == b.weights_sha256 != load_model(tiny[family]).weights_sha256


def test_bad_feature_extractor_is_refused(tmp_path):
    folder = save_tiny("wav2vec2-bert", tmp_path / "bert")
    path = folder / "preprocessor_config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "stride": 3}))
    with pytest.raises(ModelError, match="25 ms windows every 10 ms"):
        load_model(folder)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", ["whisper", "wav2vec2-bert", "wav2vec2-conformer"])
def test_cuda_equals_cpu(tiny, clip, family):
    layers = None
    out = {}
    for device in ("cpu", "cuda"):
        loaded = load_model(tiny[family], device=device)
        layers = layers or available_layers(loaded)
        feats = extract_features(loaded, clip, layers=layers, window_s=2.0, stride_s=1.0)
        out[device] = {name: np.array(feats.layers[name]) for name in layers}
    for name in layers:
        np.testing.assert_allclose(out["cuda"][name], out["cpu"][name], atol=1e-3, rtol=1e-3)
