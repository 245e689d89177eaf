"""Model-free acoustic baselines scored like a model: log-mel spectrogram and amplitude envelope.

``--model mel`` and ``--model envelope`` are feature spaces with a single layer named after
them, computed from the 16 kHz waveform (no normalisation) at 100 frames per second; frame
``j`` starts at ``j / 100`` s, as for a model's frames. They are cached, exported, scored and
mapped exactly like a model's layers (maps ``desc-melMel``, ``desc-envelopeEnvelope``).

- ``mel``: 40 mel bands (HTK scale, 0-8 kHz) of the power spectrum of 25 ms Hann windows
  (400 samples) every 10 ms (160 samples), ``log10`` with a floor of 1e-10, computed with
  ``transformers.audio_utils`` (``spectrogram``, ``mel_filter_bank``; windows are not
  centred, so frame ``j`` covers samples ``160 j`` to ``160 j + 400``). The same definition
  as ``bids-w2v-abx``'s ``logmel`` baseline.
- ``envelope``: broadband amplitude envelope, the modulus of the analytic signal
  (``scipy.signal.hilbert`` over the whole stimulus) averaged over each 10 ms bin (frame ``j``
  is the mean over samples ``160 j`` to ``160 j + 160``): one column.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from bids_w2v.errors import AudioError
from bids_w2v.features.families import ACOUSTIC_TYPES

__all__ = [
    "ACOUSTIC_DESCRIPTIONS",
    "ACOUSTIC_PARAMETERS",
    "ACOUSTIC_RATE",
    "ACOUSTIC_TYPES",
    "AcousticModel",
    "acoustic_features",
    "acoustic_stream",
    "load_acoustic",
    "parameters_sha256",
]

SAMPLING_RATE = 16000
#: Frames per second of both baselines (10 ms hop).
ACOUSTIC_RATE = 100.0
_WINDOW, _HOP, _BANDS = 400, 160, 40
#: Everything the baselines' values depend on (recorded in sidecars, part of the cache key).
ACOUSTIC_PARAMETERS = {
    "mel": {
        "bands": _BANDS,
        "scale": "htk",
        "f_min_hz": 0.0,
        "f_max_hz": 8000.0,
        "window": "hann",
        "window_samples": _WINDOW,
        "hop_samples": _HOP,
        "power": 2.0,
        "log": "log10",
        "floor": 1e-10,
        "sampling_rate": SAMPLING_RATE,
        "implementation": "transformers.audio_utils",
    },
    "envelope": {
        "method": "abs(scipy.signal.hilbert(audio)), mean over 10 ms bins",
        "bin_samples": _HOP,
        "sampling_rate": SAMPLING_RATE,
    },
}


#: One-line description of each baseline for the methods text.
ACOUSTIC_DESCRIPTIONS = {
    "mel": "log-mel spectrogram baseline: 40 mel bands (HTK, 0-8 kHz) of 25 ms Hann windows "
    "every 10 ms, log10 power, computed with transformers' audio_utils",
    "envelope": "broadband amplitude envelope baseline: modulus of the analytic signal "
    "(scipy.signal.hilbert) averaged over 10 ms bins",
}


class AcousticModel:
    """Stand-in for an encoder: what the layer and geometry functions read (``config``)."""

    def __init__(self, kind: str) -> None:
        self.config = SimpleNamespace(model_type=kind)

    def __repr__(self) -> str:
        return f"AcousticModel({self.config.model_type!r})"


def parameters_sha256(kind: str) -> str:
    """Hex SHA-256 of a baseline's parameters (stands for the weights hash of a model)."""
    text = json.dumps({"kind": kind, **ACOUSTIC_PARAMETERS[kind]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def acoustic_features(kind: str, audio: np.ndarray) -> np.ndarray:
    """Frames of a baseline for a 16 kHz waveform.

    Parameters
    ----------
    kind : {"mel", "envelope"}
        The baseline.
    audio : numpy.ndarray
        1-D waveform at 16 kHz.

    Returns
    -------
    numpy.ndarray
        ``(n_frames, 40)`` log-mel or ``(n_frames, 1)`` envelope, float32, 100 frames per s.

    Raises
    ------
    AudioError
        If the audio is shorter than one frame (25 ms for ``mel``, 10 ms for ``envelope``).
    """
    audio = np.asarray(audio, dtype=np.float64)
    shortest = _WINDOW if kind == "mel" else _HOP
    if audio.shape[0] < shortest:
        raise AudioError(
            f"The audio is {audio.shape[0]} samples long, shorter than one frame of the "
            f"'{kind}' baseline ({shortest} samples at 16 kHz). Use a longer stimulus."
        )
    if kind == "mel":
        from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

        mel = mel_filter_bank(_WINDOW // 2 + 1, _BANDS, 0.0, 8000.0, SAMPLING_RATE)
        spec = spectrogram(
            audio,
            window_function(_WINDOW, "hann"),
            _WINDOW,
            _HOP,
            power=2.0,
            center=False,
            mel_filters=mel,
            mel_floor=1e-10,
            log_mel="log10",
        )
        return np.ascontiguousarray(spec.T, dtype=np.float32)
    from scipy.fft import next_fast_len
    from scipy.signal import hilbert

    n = audio.shape[0]
    amplitude = np.abs(hilbert(audio, N=next_fast_len(n)))[:n]
    n_frames = n // _HOP
    bins = amplitude[: n_frames * _HOP].reshape(n_frames, _HOP).mean(axis=1)
    return np.ascontiguousarray(bins[:, None], dtype=np.float32)


def acoustic_stream(
    loaded: Any,
    audio: np.ndarray,
    open_sink: Callable[[int, Mapping[str, int]], Callable[[str, int, np.ndarray], None]],
    layers: Sequence[str],
) -> float:
    """Compute a baseline and hand its single layer to a sink (as ``stream_features``).

    Returns
    -------
    float
        The frame rate (100 frames per second).
    """
    kind = loaded.model_type
    if kind not in ACOUSTIC_TYPES:  # pragma: no cover - dispatched on model_type
        raise ValueError(kind)
    frames = acoustic_features(kind, audio)
    write = open_sink(frames.shape[0], {kind: frames.shape[1]})
    for name in layers:
        write(name, 0, frames)
    return ACOUSTIC_RATE


def load_acoustic(name: str, random_init: bool = False) -> Any:
    """The acoustic baseline ``mel`` or ``envelope`` as a ``LoadedModel`` with one layer."""
    from bids_w2v.errors import ModelError
    from bids_w2v.features.models import LoadedModel

    if random_init:
        raise ModelError(
            f"'{name}' is an acoustic baseline without weights, so it has no random-init twin. "
            f"Drop ':random' (or --random-init) for '{name}'."
        )
    return LoadedModel(
        model=AcousticModel(name),
        name=name,
        label=name,
        random_init=False,
        seed=None,
        sampling_rate=16000,
        do_normalize=False,
        model_type=name,
        weights_sha256=parameters_sha256(name),
    )
