"""events.tsv parsing and stim_file safety."""

import os

import pytest

from bids_w2v.errors import InputError
from bids_w2v.io.events import read_presentations


@pytest.fixture
def stimuli(tmp_path):
    folder = tmp_path / "stimuli"
    folder.mkdir()
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
    with pytest.raises(InputError, match="outside the dataset's stimuli folder"):
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
