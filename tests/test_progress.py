"""The progress of a long step: a state file in the run's progress folder, a tqdm bar outside
a run, nothing when disabled."""

from __future__ import annotations

import json

from bids_w2v import progress as progress_mod
from bids_w2v.progress import PROGRESS_DIR_ENV, Progress, StepProgress, read_states


def test_state_file_is_written_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "MIN_INTERVAL", 0.0)
    with Progress(10, "toy", "items", folder=tmp_path) as bar:
        (state,) = read_states(tmp_path).values()
        assert state["label"] == "toy" and state["unit"] == "items"
        assert (state["total"], state["done"]) == (10, 0)
        bar.advance_to(4)
        bar.advance_to(3)  # never backwards
        bar.offset(5).advance_to(2)  # a part starting at 5: 7 done
        (state,) = read_states(tmp_path).values()
        assert state["done"] == 7
        bar.advance_to(50)  # never past the total
        assert bar.done == 10
    assert read_states(tmp_path) == {}
    assert not list(tmp_path.iterdir())  # no temporary file left


def test_writes_are_throttled_but_the_last_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "MIN_INTERVAL", 3600.0)
    bar = Progress(3, "toy", "items", folder=tmp_path)
    bar.advance_to(1)
    assert next(iter(read_states(tmp_path).values()))["done"] == 0
    bar.advance_to(3)
    assert next(iter(read_states(tmp_path).values()))["done"] == 3
    bar.close()


def test_the_environment_names_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_DIR_ENV, str(tmp_path))
    with Progress(5, "env", "s audio", enabled=True):
        assert len(read_states(tmp_path)) == 1
    assert capsys.readouterr().err == ""  # under bids-w2v: no bar of its own


def test_outside_a_run_a_bar_or_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_DIR_ENV, raising=False)
    with Progress(4, "alone", "items") as bar:
        bar.advance_to(4)
    assert "alone" in capsys.readouterr().err
    with Progress(4, "silent", "items", enabled=False) as bar:
        bar.advance_to(4)
    assert capsys.readouterr().err == ""


def test_step_progress_starts_at_the_first_call(tmp_path, monkeypatch):
    monkeypatch.setenv(PROGRESS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(progress_mod, "MIN_INTERVAL", 0.0)
    with StepProgress("fit conv0", "fold-chunks") as report:
        assert read_states(tmp_path) == {}
        report(1, 10)
        (state,) = read_states(tmp_path).values()
        assert (state["done"], state["total"], state["unit"]) == (1, 10, "fold-chunks")
    assert read_states(tmp_path) == {}


def test_unreadable_states_are_skipped(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "other.json").write_text(json.dumps({"label": "x"}))
    assert read_states(tmp_path) == {}
    assert read_states(tmp_path / "missing") == {}
