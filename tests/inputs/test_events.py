"""events.tsv parsing and stim_file safety."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_w2v.errors import InputError
from bids_w2v.inputs.events import (
    Presentation,
    merge_presentations,
    read_presentations,
    shift_onsets,
)


@pytest.fixture
def stimuli(tmp_path):
    folder = tmp_path / "ds" / "stimuli"  # the dataset is tmp_path/ds
    folder.mkdir(parents=True)
    (folder / "a.wav").write_bytes(b"RIFF")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.wav").write_bytes(b"RIFF")
    return folder


def _events(tmp_path, text):
    path = tmp_path / "sub-01_task-x_events.tsv"
    path.write_text(text)
    return path


def test_rows_with_stimuli(tmp_path, stimuli):
    ev = _events(
        tmp_path, "onset\tduration\tstim_file\n0\t1\tn/a\n2.5\t3\ta.wav\n9\t1\tsub/b.wav\n"
    )
    pres = read_presentations(ev, stimuli)
    assert [p.onset for p in pres] == [2.5, 9.0]
    assert pres[1].stim_file == (stimuli / "sub" / "b.wav").resolve()


@pytest.mark.parametrize("value", ["/etc/passwd", "../secret.wav", "sub/../../x.wav"])
def test_paths_outside_stimuli_refused(tmp_path, stimuli, value):
    ev = _events(tmp_path, f"onset\tduration\tstim_file\n0\t1\t{value}\n")
    with pytest.raises(InputError, match="row 1 of"):
        read_presentations(ev, stimuli)


def test_symlink_escaping_refused(tmp_path, stimuli):
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF")
    os.symlink(outside, stimuli / "link.wav")
    ev = _events(tmp_path, "onset\tduration\tstim_file\n0\t1\tlink.wav\n")
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(ev, stimuli)


def test_missing_column_and_file(tmp_path, stimuli):
    ev = _events(tmp_path, "onset\tduration\ttrial_type\n0\t1\tspeech\n")
    with pytest.raises(InputError, match="no stim_file column"):
        read_presentations(ev, stimuli)
    ev = _events(tmp_path, "onset\tduration\tstim_file\n0\t1\tnope.wav\n")
    with pytest.raises(InputError, match="does not exist"):
        read_presentations(ev, stimuli)


def test_no_stimulus_and_bad_onset(tmp_path, stimuli):
    ev = _events(tmp_path, "onset\tduration\tstim_file\n0\t1\tn/a\n")
    with pytest.raises(InputError, match="names no audio stimulus"):
        read_presentations(ev, stimuli)
    ev = _events(tmp_path, "onset\tduration\tstim_file\nsoon\t1\ta.wav\n")
    with pytest.raises(InputError, match="not a number"):
        read_presentations(ev, stimuli)


# --- the Narratives rule: rows annotating one playback are one presentation ----------------


def _wav(path, seconds, sr=8000):
    sf.write(path, np.zeros(int(seconds * sr)), sr, subtype="PCM_16")
    return path


def test_pieman_rows_are_one_playback(tmp_path):
    """Narratives' pieman: music 0-13 s and story from 15 s are segments of ONE playback."""
    stim = tmp_path / "stimuli"
    stim.mkdir()
    _wav(stim / "pieman_audio.wav", 437.0)
    ev = _events(
        tmp_path,
        "onset\tduration\ttrial_type\tstim_file\n"
        "0.0\t13.0\tmusic\tpieman_audio.wav\n15.0\t422.0\tstory\tpieman_audio.wav\n",
    )
    pres = read_presentations(ev, stim)
    assert len(pres) == 1 and pres[0].onset == 0.0


def test_file_played_again_after_its_end_is_a_new_presentation(tmp_path):
    stim = tmp_path / "stimuli"
    stim.mkdir()
    _wav(stim / "a.wav", 10.0)
    _wav(stim / "b.wav", 5.0)
    ev = _events(
        tmp_path,
        "onset\tduration\tstim_file\n2\t10\ta.wav\n5\t2\ta.wav\n12\t10\ta.wav\n"
        "30\t5\tb.wav\n31\t1\tb.wav\n",
    )
    pres = read_presentations(ev, stim)
    assert [(p.onset, p.stim_file.name) for p in pres] == [
        (2.0, "a.wav"),
        (12.0, "a.wav"),
        (30.0, "b.wav"),
    ]


@settings(max_examples=200, deadline=None)
@given(
    durations=st.lists(st.floats(0.5, 50.0), min_size=1, max_size=3),
    rows=st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 200.0)), min_size=1, max_size=12),
)
def test_merge_rule_properties(durations, rows):
    """Kept presentations of one file never overlap; every dropped row lies inside a kept
    playback of its file; a single row per file is always kept."""
    files = [Path(f"/s/{i}.wav") for i in range(len(durations))]
    length = {f: d for f, d in zip(files, durations, strict=False)}
    pres = [Presentation(onset, files[i % len(files)]) for i, onset in rows]
    merged = merge_presentations(pres, length.__getitem__)
    assert merged == sorted(merged, key=lambda p: p.onset)
    assert set(merged) <= set(pres)
    for f in files:
        kept = [p.onset for p in merged if p.stim_file == f]
        assert all(b >= a + length[f] - 1e-6 for a, b in zip(kept, kept[1:], strict=False))
        for p in pres:
            if p.stim_file == f and p not in merged:
                assert any(k <= p.onset < k + length[f] for k in kept)
        if sum(p.stim_file == f for p in pres) == 1:
            assert len(kept) == 1


def test_durations_read_only_for_repeated_files(tmp_path):
    asked = []
    pres = [Presentation(0.0, Path("a.wav")), Presentation(3.0, Path("b.wav"))]
    assert merge_presentations(pres, lambda f: asked.append(f) or 1.0) == pres
    assert asked == []


def test_shift_onsets():
    pres = [Presentation(0.0, Path("a.wav")), Presentation(30.0, Path("b.wav"))]
    assert [p.onset for p in shift_onsets(pres, -8.0)] == [-8.0, 22.0]
