"""Minimal pairs synthesised with espeak-ng, with an ABX item file (tests, benchmark, demo).

Words are consonant-vowel-consonant English words sharing their consonants ("bat", "bit",
"but"...). Each espeak-ng voice is a speaker; each word is said several times per speaker at
different speaking rates. Every token is its own WAV file, and its item spans the whole word
(from the first to the last 10 ms frame louder than 1% of the token's peak): the item is ON the
vowel, BY the context of the two consonants.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

__all__ = ["ESPEAK", "VOICES", "WORDS", "espeak_available", "synthesise_minimal_pairs"]

ESPEAK = "espeak-ng"
#: word -> (vowel, previous consonant, next consonant)
WORDS = {
    "bat": ("ae", "b", "t"),
    "bit": ("ih", "b", "t"),
    "but": ("ah", "b", "t"),
    "pat": ("ae", "p", "t"),
    "pit": ("ih", "p", "t"),
    "putt": ("ah", "p", "t"),
    "bad": ("ae", "b", "d"),
    "bid": ("ih", "b", "d"),
    "bud": ("ah", "b", "d"),
}
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp")
RATES = (140, 175)


def espeak_available() -> bool:
    """Whether the espeak-ng program is on the PATH."""
    return shutil.which(ESPEAK) is not None


def _speech_span(audio: np.ndarray, sr: int) -> tuple[float, float]:
    hop = sr // 100
    n = audio.shape[0] // hop
    energy = np.abs(audio[: n * hop]).reshape(n, hop).max(axis=1)
    loud = np.flatnonzero(energy > 0.01 * energy.max())
    return loud[0] * hop / sr, (loud[-1] + 1) * hop / sr


def synthesise_minimal_pairs(
    folder: str | Path,
    *,
    voices=VOICES,
    words=WORDS,
    rates=RATES,
) -> Path:
    """Write ``folder/audio/<speaker>_<word>_<rate>.wav`` and ``folder/items.item``.

    Returns
    -------
    Path
        The item file.
    """
    import soundfile

    folder = Path(folder)
    audio_dir = folder / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    lines = ["#file onset offset #phone prev-phone next-phone speaker"]
    for voice in voices:
        speaker = voice.replace("-", "")
        for word, (vowel, prev, nxt) in words.items():
            for rate in rates:
                name = f"{speaker}_{word}_{rate}"
                path = audio_dir / f"{name}.wav"
                subprocess.run(
                    [ESPEAK, "-v", voice, "-s", str(rate), "-w", str(path), word],
                    check=True,
                    capture_output=True,
                )
                audio, sr = soundfile.read(path)
                onset, offset = _speech_span(audio, sr)
                lines.append(f"{name} {onset:.3f} {offset:.3f} {vowel} {prev} {nxt} {speaker}")
    item_file = folder / "items.item"
    item_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return item_file
