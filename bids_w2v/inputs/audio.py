"""Reading speech stimuli: any rate, bit depth and channel count to mono float32 at the model rate.

Decoding is done by libsndfile (through :mod:`soundfile`), so WAV, FLAC, OGG/Vorbis and MP3 files
are read directly; resampling uses :func:`soxr.resample` with its high-quality (anti-aliased)
filter.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bids_w2v.errors import AudioError

__all__ = ["SILENCE_PEAK", "audio_duration", "load_audio"]

#: Audio whose absolute peak stays below this value (full scale = 1.0) is treated as silent.
SILENCE_PEAK = 1e-6

_CONVERT_HINT = (
    "Convert it to a standard format, for example with "
    "`ffmpeg -i <input> -ac 1 -ar 16000 <output>.wav`, and point the events file at the new file."
)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(
            f"The audio stimulus '{path}' does not exist. Check the stimulus path (for BIDS "
            "datasets the stim_file column of the events file, relative to the dataset's stimuli/ "
            "folder) and make sure the file is present (for datalad datasets run "
            "`datalad get` on it)."
        )
    if path.is_dir():
        raise AudioError(
            f"The audio stimulus '{path}' is a directory, not an audio file. Point to a WAV, "
            "FLAC, OGG or MP3 file instead."
        )


def load_audio(path: str | os.PathLike[str], target_sr: int = 16000) -> np.ndarray:
    """Load an audio file as a mono float32 waveform at ``target_sr``.

    Parameters
    ----------
    path : str or path-like
        Audio file readable by libsndfile (WAV, FLAC, OGG/Vorbis, MP3, ...), any sampling rate,
        bit depth and number of channels.
    target_sr : int, default 16000
        Sampling rate (Hz) of the returned waveform.

    Returns
    -------
    numpy.ndarray
        1-D float32 array. Channels are averaged into one; the signal is resampled with
        ``soxr.resample(..., quality="HQ")`` when the file's rate differs from ``target_sr``.

    Raises
    ------
    AudioError
        If the file is missing, cannot be decoded, holds no samples, contains non-finite values
        or is silent (peak below ``SILENCE_PEAK``).
    """
    path = Path(path)
    if int(target_sr) <= 0:
        raise ValueError(f"target_sr must be a positive number of Hz, got {target_sr!r}")
    _check_exists(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"The audio stimulus '{path}' cannot be decoded ({exc}). It is either corrupt or in "
            f"a format libsndfile does not read. {_CONVERT_HINT}"
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(
            f"The audio stimulus '{path}' is empty (it contains no samples). Replace it with the "
            "recording that was played to the participants."
        )
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError(
            f"The audio stimulus '{path}' contains NaN or infinite sample values. Re-export it "
            f"as integer PCM. {_CONVERT_HINT}"
        )
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise AudioError(
            f"The audio stimulus '{path}' is silent (peak amplitude {peak:.3g} of full scale, "
            f"{data.shape[0]} samples at {sr} Hz). A speech model cannot produce meaningful "
            "features from silence; check that the right file is referenced and that it was "
            "not exported with zero gain."
        )
    if sr != target_sr:
        mono = soxr.resample(mono, sr, int(target_sr), quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Return the duration of an audio file in seconds, read from its header.

    Parameters
    ----------
    path : str or path-like
        Audio file readable by libsndfile.

    Returns
    -------
    float
        Number of frames divided by the sampling rate. The samples are not decoded.

    Raises
    ------
    AudioError
        If the file is missing or its header cannot be read.
    """
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"The header of the audio stimulus '{path}' cannot be read ({exc}). {_CONVERT_HINT}"
        ) from exc
    if info.samplerate <= 0:
        raise AudioError(
            f"The audio stimulus '{path}' declares an invalid sampling rate "
            f"({info.samplerate} Hz). {_CONVERT_HINT}"
        )
    return float(info.frames) / float(info.samplerate)
