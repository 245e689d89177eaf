"""Turn runs of a simulated dataset into other tasks: several stories per participant.

Narratives participants heard several stories, each its own task, and not all of them the same
set. :func:`retask_run` renames one run of a dataset written by
:mod:`bids_w2v.testing.simulator` (raw BOLD and events, every derivative) into another task,
:func:`drop_run` removes a run, :func:`silence_run` removes the audio from a run's events (a
task whose events name no audio, as a localiser without sound). The simulated signal is kept:
a run keeps its stimuli and planted responses under its new name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def _run_files(root: Path, stem: str) -> list[Path]:
    """Every file of the run ``stem`` (``sub-01_task-listen_run-3``), raw and derivatives."""
    return sorted(p for p in Path(root).rglob(f"{stem}_*") if p.is_file())


def retask_run(root: Path, stem: str, task: str, run: str | None = None) -> str:
    """Rename the run ``stem`` as a run of ``task`` (``run``: its run label, None: no run
    entity); returns the new stem. Writes ``task-<task>_bold.json`` (TR of the old task)."""
    root = Path(root)
    subject = stem.split("_")[0]
    old_task = stem.split("_task-")[1].split("_")[0]
    new = f"{subject}_task-{task}" + (f"_run-{run}" if run is not None else "")
    files = _run_files(root, stem)
    if not files:
        raise FileNotFoundError(f"no file of the run {stem} under {root}")
    for path in files:
        target = path.with_name(new + path.name[len(stem) :])
        if path.suffix == ".json":
            meta = json.loads(path.read_text())
            if "TaskName" in meta:
                meta["TaskName"] = task
            target.write_text(json.dumps(meta, indent=2) + "\n")
            path.unlink()
        else:
            path.rename(target)
    sidecar, old = root / f"task-{task}_bold.json", root / f"task-{old_task}_bold.json"
    if not sidecar.exists() and old.exists():
        meta = json.loads(old.read_text())
        sidecar.write_text(json.dumps({**meta, "TaskName": task}, indent=2) + "\n")
    return new


def drop_run(root: Path, stem: str) -> None:
    """Remove every file of the run ``stem`` (a story this participant did not hear)."""
    for path in _run_files(root, stem):
        path.unlink()


def silence_run(root: Path, stem: str) -> None:
    """Rewrite the run's ``events.tsv`` without its ``stim_file`` column (no audio named)."""
    (events,) = [p for p in _run_files(root, stem) if p.name.endswith("_events.tsv")]
    table = pd.read_csv(events, sep="\t")
    table.drop(columns=["stim_file"]).to_csv(events, sep="\t", index=False, na_rep="n/a")
