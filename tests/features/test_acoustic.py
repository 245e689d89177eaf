"""The acoustic baselines against computations written here with numpy and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bids_w2v.errors import AudioError, ModelError
from bids_w2v.features import available_layers, extract_features, load_model, load_or_extract
from bids_w2v.features.acoustic import ACOUSTIC_RATE

SR = 16000


def _tone(seconds=3.0, modulation_hz=3.0):
    t = np.arange(int(seconds * SR)) / SR
    modulator = 1.0 + 0.8 * np.sin(2 * np.pi * modulation_hz * t)
    return (0.1 * modulator * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32), modulator


def test_layers_and_identity():
    for kind, dim in (("mel", 40), ("envelope", 1)):
        loaded = load_model(kind)
        assert available_layers(loaded) == [kind] and loaded.label == kind
        audio, _ = _tone()
        feats = extract_features(loaded, audio, layers=[kind])
        assert feats.frame_rate == ACOUSTIC_RATE == 100.0
        assert feats.layers[kind].shape[1] == dim and feats.layers[kind].dtype == np.float32


def test_mel_equals_numpy_power_spectrum():
    from transformers.audio_utils import mel_filter_bank

    audio, _ = _tone(1.0)
    feats = extract_features(load_model("mel"), audio, layers=["mel"]).layers["mel"]
    n = 1 + (audio.shape[0] - 400) // 160
    frames = np.stack([audio[160 * j : 160 * j + 400].astype(np.float64) for j in range(n)])
    power = np.abs(np.fft.rfft(frames * np.hanning(401)[:-1], axis=1)) ** 2  # periodic Hann
    ref = np.log10(np.maximum(power @ mel_filter_bank(201, 40, 0.0, 8000.0, SR), 1e-10))
    assert feats.shape == (n, 40)
    np.testing.assert_allclose(feats, ref, atol=1e-3)
    # the 1 kHz tone's band carries the most energy
    centres = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 42)[1:-1] / 2595) - 1)
    assert abs(centres[feats.mean(0).argmax()] - 1000) < 150


def test_envelope_recovers_the_modulator():
    audio, modulator = _tone()
    env = extract_features(load_model("envelope"), audio, layers=["envelope"]).layers["envelope"]
    assert env.shape == (audio.shape[0] // 160, 1)
    expected = modulator[: env.shape[0] * 160].reshape(-1, 160).mean(1)
    assert np.corrcoef(env[5:-5, 0], expected[5:-5])[0, 1] > 0.999
    np.testing.assert_allclose(env[5:-5, 0], 0.1 * expected[5:-5], rtol=0.02)


def test_baselines_are_cached(tmp_path):
    audio, _ = _tone(2.0)
    path = tmp_path / "tone.wav"
    sf.write(path, audio, SR)
    loaded = load_model("mel")
    a = load_or_extract(
        tmp_path / "cache", path, loaded, layers=["mel"], window_s=10.0, stride_s=5.0
    )
    b = load_or_extract(
        tmp_path / "cache", path, loaded, layers=["mel"], window_s=10.0, stride_s=5.0
    )
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 1
    np.testing.assert_array_equal(a.layers["mel"], b.layers["mel"])


def test_random_init_of_a_baseline_is_refused():
    with pytest.raises(ModelError, match="no random-init twin"):
        load_model("envelope", random_init=True)


def test_too_short_audio_is_refused():
    with pytest.raises(AudioError, match="shorter than one frame"):
        extract_features(load_model("mel"), np.zeros(300, np.float32) + 0.1, layers=["mel"])
