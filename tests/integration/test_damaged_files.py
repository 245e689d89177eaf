"""Damaged input files: one paragraph naming each file, non-zero exit, no traceback.

0-byte and truncated BOLD files (as in the bids-examples fMRIPrep layouts, or after a full disk)
are found by the pre-flight check before the graph runs, all in one message; a truncation that
the cheap check cannot see is named from inside the node that reads the file; a truncated
participant map stops the group level before its graph.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from bids_w2v.cli.run import main

SPACE = "space-MNI152NLin2009cAsym"


def _bold(ds: Path, sub: str = "01", run: int = 1) -> Path:
    func = ds / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
    return func / f"sub-{sub}_task-listen_run-{run}_{SPACE}_desc-preproc_bold.nii.gz"


def _run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _one_paragraph(err: str) -> None:
    assert "bids-w2v: error: " in err, err  # (the model's loading bar may come before)
    assert err[err.index("bids-w2v: error: ") :].count("\n") == 1, err
    assert "Traceback" not in err and "Crash reports" not in err


def test_empty_and_truncated_bold_listed_together(sim_copy, tiny_model, tmp_path, capsys):
    empty, cut = _bold(sim_copy, "01", 1), _bold(sim_copy, "02", 3)
    empty.write_bytes(b"")
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    work = tmp_path / "work"
    code, err = _run(capsys, sim_copy, tmp_path / "out", "participant",
                     "--model", tiny_model, "-w", work)  # fmt: skip
    assert code == 2
    _one_paragraph(err)
    assert "2 input file(s) of the participant level cannot be read" in err
    assert f"{empty} is empty (0 bytes)" in err and f"{cut} is truncated" in err
    assert "re-run fMRIPrep" in err
    assert not (work / "crash").exists()  # before the graph


def test_truncated_bold_nii(sim_copy, tiny_model, tmp_path, capsys):
    """An uncompressed .nii shorter than its header says."""
    gz = _bold(sim_copy)
    nii = gz.with_name(gz.name[: -len(".gz")])
    raw = gzip.decompress(gz.read_bytes())
    nii.write_bytes(raw[: len(raw) - 1000])
    gz.unlink()
    code, err = _run(capsys, sim_copy, tmp_path / "out", "participant",
                     "--model", tiny_model, "-w", tmp_path / "work")  # fmt: skip
    assert code == 2
    _one_paragraph(err)
    assert f"{nii} is truncated: {len(raw) - 1000} bytes, its header announces {len(raw)}" in err


@pytest.mark.slow  # runs the graph up to the node that reads the file
def test_truncation_found_while_reading_names_the_file(sim_copy, tiny_model, tmp_path, capsys):
    """A .nii.gz cut short whose last 4 bytes equal the header's data length passes the cheap
    check; the node that reads it fails with one paragraph naming it."""
    bold = _bold(sim_copy, "01", 2)
    data = bold.read_bytes()
    length = len(gzip.decompress(data))
    bold.write_bytes(data[: len(data) * 2 // 3] + length.to_bytes(4, "little"))
    code, err = _run(capsys, sim_copy, tmp_path / "out", "participant",
                     "--model", tiny_model, "-w", tmp_path / "work",
                     "--participant-label", "01")  # fmt: skip
    assert code == 2
    _one_paragraph(err)
    assert f"{bold} cannot be read" in err and "damaged" in err


@pytest.mark.slow  # reads the shared participant run
def test_truncated_participant_map_stops_the_group_level(
    participant_run, sim_dataset, tiny_model, tmp_path, capsys
):
    out = shutil.copytree(participant_run[0], tmp_path / "out")
    maps = sorted(out.glob("sub-02/func/*_stat-r_statmap.nii.gz"))
    data = maps[0].read_bytes()
    maps[0].write_bytes(data[: len(data) - 10])  # the gzip trailer and some data lost
    maps[1].write_bytes(b"")
    work = tmp_path / "work"
    code, err = _run(capsys, sim_dataset[0], out, "group", "--model", tiny_model, "-w", work)
    assert code == 2
    _one_paragraph(err)
    assert "2 participant-level file(s) cannot be read" in err
    assert f"{maps[0]} is truncated" in err and f"{maps[1]} is empty" in err
    assert "Re-run the participant level" in err
    assert not (work / "crash").exists() and not list(out.glob("task-*_statmap.*"))
