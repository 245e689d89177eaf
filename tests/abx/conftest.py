"""Minimal pairs synthesised with espeak-ng (skipped where espeak-ng is absent)."""

from __future__ import annotations

import pytest

from bids_w2v.testing.minimal_pairs import (
    VOICES,
    WORDS,
    espeak_available,
    synthesise_minimal_pairs,
)


@pytest.fixture(scope="session")
def minimal_pairs(tmp_path_factory):
    """``(item_file, audio_dir)`` of espeak-ng minimal pairs (4 voices, 9 words, 2 rates)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("minimal_pairs")
    return synthesise_minimal_pairs(folder), folder / "audio"


@pytest.fixture(scope="session")
def small_minimal_pairs(tmp_path_factory):
    """A smaller set: 2 voices, "bat bit bad bid", 2 rates (16 files) for model tests."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("small_minimal_pairs")
    words = {w: WORDS[w] for w in ("bat", "bit", "bad", "bid")}
    return synthesise_minimal_pairs(folder, voices=VOICES[:2], words=words), folder / "audio"
