"""Minimal pairs synthesised with espeak-ng (skipped where espeak-ng is absent)."""

from __future__ import annotations

import pytest

from bids_w2v.testing.minimal_pairs import espeak_available, synthesise_minimal_pairs


@pytest.fixture(scope="session")
def minimal_pairs(tmp_path_factory):
    """``(item_file, audio_dir)`` of espeak-ng minimal pairs (4 voices, 9 words, 2 rates)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("minimal_pairs")
    return synthesise_minimal_pairs(folder), folder / "audio"
