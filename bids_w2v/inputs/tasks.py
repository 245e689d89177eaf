"""Which tasks each participant's model is fitted on: every story they heard, in one model.

Narratives participants heard several stories, each its own task (``task-pieman_run-1``,
``task-tunnel``). By default the participant level fits every *audio task* of the dataset that
a participant has data for jointly: the runs of all of them are concatenated, in alphabetical
order of the task labels and, within a task, by session then run
(:func:`bids_w2v.inputs.runs.collect_participants`). ``--task A [B ...]`` chooses the tasks.

A task is an audio task when its events name audio: one of its raw ``events.tsv`` files has a
``stim_file`` value, or, with a ``--stimulus-map``, the map has rows for it. Other tasks (a
resting state, a localiser without audio) are skipped with a note in the log when no ``--task``
was given, and are an error when one was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from bids import BIDSLayout

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import not_fetched
from bids_w2v.inputs.filters import CollectOptions, query_filters
from bids_w2v.inputs.stimulus_map import ENTITY_COLUMNS, matching_rows

_MISSING = {"", "n/a", "nan", "none"}

#: how the runs of several tasks are ordered before they are concatenated (sidecars, docs)
RUN_ORDER = (
    "tasks in alphabetical order of their labels; within a task, runs by session then run; "
    "concatenated in this order"
)


@dataclass(frozen=True)
class TaskPlan:
    """The tasks fitted for each participant, and the tasks left out (with why).

    Attributes
    ----------
    subjects : mapping
        Subject label -> its tasks, in the order their runs are concatenated.
    notes : tuple of str
        One line per task skipped (printed in the log).
    """

    subjects: Mapping[str, tuple[str, ...]]
    notes: tuple[str, ...] = field(default=())

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task fitted for at least one participant, in order."""
        return tuple(sorted({t for tasks in self.subjects.values() for t in tasks}))


def _audio_reason(layout: BIDSLayout, task: str, options: CollectOptions) -> str | None:
    """Why ``task`` names no audio, or None when it does (or cannot be told before reading)."""
    if options.stimulus_map is not None:
        table = options.stimulus_map
        others = [c for c in ENTITY_COLUMNS if c != "task" and c in table]
        if matching_rows(table.drop(columns=others), {"task": task}).empty:
            return f"the --stimulus-map {options.stimulus_map_file or ''} has no row for it"
        return None
    events = layout.get(
        scope="raw",
        suffix="events",
        extension=".tsv",
        task=task,
        **query_filters(options.filters, "events"),
    )
    if not events:
        return "no events.tsv for its runs"
    for found in events:
        path = Path(found.path)
        if not_fetched(path):
            return None  # the pre-flight check lists it
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return None  # reading the run reports why
        if "stim_file" in table and any(
            str(v).strip().lower() not in _MISSING for v in table["stim_file"]
        ):
            return None
    return "its events.tsv files name no audio (no stim_file value)"


def _subject_tasks(
    layout: BIDSLayout, subject: str, space: str, res: str | None, options: CollectOptions
) -> tuple[set[str], set[str]]:
    """Tasks of ``subject`` with derivatives in ``space`` (the ``bold`` filters applied), and
    the tasks of its raw data that have no derivatives in that space at all."""
    query = {"scope": "derivatives", "subject": subject, "space": space, "target": "task"}
    query.update({"res": res} if res else {})
    found = set(layout.get(return_type="id", **query, **query_filters(options.filters, "bold")))
    anywhere = set(layout.get(return_type="id", **query)) if options.filters else found
    raw = set(layout.get(scope="raw", subject=subject, return_type="id", target="task"))
    return found, raw - anywhere


def plan_tasks(
    layout: BIDSLayout,
    subjects: Sequence[str],
    space: str,
    res: str | None = None,
    requested: Sequence[str] = (),
    options: CollectOptions | None = None,
) -> TaskPlan:
    """Choose the tasks fitted for each participant.

    Parameters
    ----------
    layout : BIDSLayout
        From :func:`~bids_w2v.inputs.layout.load_layout`.
    subjects : sequence of str
        Subject labels (without ``sub-``).
    space, res : str
        The space (and resolution) of the preprocessed BOLD: a participant's tasks are those
        with derivatives there (a task with raw data only is noted, not fitted).
    requested : sequence of str
        ``--task`` labels (with or without ``task-``); empty: every audio task.
    options : CollectOptions, optional
        The stimulus map and BIDS filters (events files) say which tasks name audio.

    Returns
    -------
    TaskPlan

    Raises
    ------
    InputError
        An unknown task, a requested task that names no audio, no audio task at all, or a
        participant with none of the tasks.
    """
    options = options or CollectOptions()
    available = sorted(layout.get_tasks(scope="raw"))
    wanted = list(dict.fromkeys(t[5:] if t.startswith("task-") else t for t in requested))
    unknown = [t for t in wanted if t not in available]
    if unknown:
        raise InputError(
            f"Task {', '.join(repr(t) for t in unknown)} {'is' if len(unknown) == 1 else 'are'} "
            f"not in the dataset {layout.root}; "
            f"it has: {', '.join(available) or 'no task at all'}. Fix --task."
        )
    reasons = {t: _audio_reason(layout, t, options) for t in (wanted or available)}
    silent = {t: r for t, r in reasons.items() if r is not None}
    if wanted and silent:
        raise InputError(
            "--task names task(s) with no audio to model: "
            + "; ".join(f"'{t}': {r}" for t, r in silent.items())
            + ". bids-w2v reads the audio that was played from the events files' stim_file "
            "column (or a --stimulus-map): remove these tasks from --task, or add the audio."
        )
    tasks = sorted(t for t in reasons if t not in silent)
    if not tasks:
        raise InputError(
            f"No events.tsv (nor --stimulus-map row) names audio for any task of the dataset "
            f"{layout.root}: "
            + "; ".join(f"task '{t}': {r}" for t, r in silent.items())
            + ". bids-w2v reads the audio that was played from the events files' stim_file "
            "column: add events.tsv files with onset, duration and stim_file, or give a "
            "--stimulus-map (as for Le Petit Prince, whose runs have no events files)."
        )
    notes = tuple(
        f"bids-w2v: task '{t}' skipped: {r} (give --task to choose the tasks)"
        for t, r in silent.items()
    )
    plan, empty, lines = {}, [], list(notes)
    for subject in subjects:
        found, raw_only = _subject_tasks(layout, subject, space, res, options)
        plan[subject] = tuple(t for t in tasks if t in found)
        missing = [t for t in tasks if t in raw_only]
        if not plan[subject]:  # collecting them says which spaces the derivatives hold
            plan[subject] = tuple(missing)
        elif missing:
            lines.append(
                f"bids-w2v: sub-{subject}: task(s) {', '.join(missing)} not fitted: raw data "
                f"but no preprocessed BOLD in space '{space}'"
            )
        if not plan[subject]:
            empty.append(subject)
    if empty:
        raise InputError(
            f"Participant(s) {', '.join('sub-' + s for s in empty)} have no run of the "
            f"task(s) analysed ({', '.join(tasks)}) in {layout.root}. Choose other tasks with "
            "--task, or leave these participants out with --participant-label."
        )
    notes = tuple(lines)
    return TaskPlan(plan, notes)
