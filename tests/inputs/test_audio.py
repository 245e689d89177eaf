"""Tests of bids_w2v.inputs.audio on the shipped recordings and on broken files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bids_w2v.errors import AudioError, InputError
from bids_w2v.inputs.audio import audio_duration, load_audio


@pytest.fixture(scope="module")
def speech_dir():
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        yield Path(folder)


def test_stereo_44k_to_mono_16k(speech_dir):
    path = speech_dir / "obama_speech.wav"
    info = sf.info(str(path))
    assert (info.samplerate, info.channels) == (44100, 2)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.shape[0] - info.frames * 16000 / 44100) <= 1
    assert 0.01 < np.abs(audio).max() <= 1.5
    raw, _ = sf.read(str(path), dtype="float32")
    # the mono mix is the channel average: compare energies at the original rate
    mix = raw.mean(axis=1)
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(np.sqrt(np.mean(mix**2)), rel=0.05)


def test_unsigned_8bit_11k(speech_dir):
    path = speech_dir / "barber.wav"
    audio = load_audio(path, target_sr=16000)
    info = sf.info(str(path))
    assert info.subtype == "PCM_U8"
    assert abs(audio.shape[0] - info.frames * 16000 / 11025) <= 1
    assert audio.dtype == np.float32
    # unsigned samples are centred on zero, not on 0.5
    assert abs(float(audio.mean())) < 0.05
    assert load_audio(path, target_sr=11025).shape[0] == info.frames


def test_audio_duration(speech_dir):
    assert audio_duration(speech_dir / "obama_speech.wav") == pytest.approx(8.71, abs=0.01)
    assert audio_duration(speech_dir / "barber.wav") == pytest.approx(56.674, abs=0.01)


def test_channel_average_without_resampling(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.5 * np.sin(2 * np.pi * 220 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), left / 2, atol=1e-6)


def test_flac_and_ogg(tmp_path, speech_dir):
    audio = load_audio(speech_dir / "obama_speech.wav")
    for ext in ("flac", "ogg"):
        path = tmp_path / f"clip.{ext}"
        sf.write(path, audio, 16000)
        assert abs(load_audio(path).shape[0] - audio.shape[0]) <= 1


def test_resampling_is_anti_aliased(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    kept, aliased = tmp_path / "kept.wav", tmp_path / "aliased.wav"
    sf.write(kept, 0.5 * np.sin(2 * np.pi * 3000 * t), sr, subtype="FLOAT")
    sf.write(aliased, 0.5 * np.sin(2 * np.pi * 11000 * t), sr, subtype="FLOAT")
    rms = [float(np.sqrt(np.mean(load_audio(p)[2000:-2000] ** 2))) for p in (kept, aliased)]
    assert rms[0] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert rms[1] < 1e-3  # above the 8 kHz Nyquist: removed, not folded back to 5 kHz


def _error_for(path: Path) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, InputError)
    return info.value


def test_missing_file(tmp_path):
    assert "does not exist" in str(_error_for(tmp_path / "nope.wav"))
    with pytest.raises(AudioError, match="nope.wav"):
        audio_duration(tmp_path / "nope.wav")


def test_directory(tmp_path):
    assert "directory" in str(_error_for(tmp_path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert "empty" in str(_error_for(path))


def test_silent_file(tmp_path):
    zeros, whisper = tmp_path / "zeros.wav", tmp_path / "whisper.wav"
    sf.write(zeros, np.zeros(16000, dtype=np.int16), 16000, subtype="PCM_16")
    sf.write(whisper, np.full(16000, 1e-7, dtype=np.float32), 16000, subtype="FLOAT")
    assert "silent" in str(_error_for(zeros))
    assert "silent" in str(_error_for(whisper))


def test_unreadable_file(tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("this is not audio\n" * 10)
    message = str(_error_for(path))
    assert "cannot be decoded" in message and "ffmpeg" in message
    with pytest.raises(AudioError, match="text.wav"):
        audio_duration(path)
