"""Read ``events.tsv`` files: which audio stimulus starts when.

The raw BIDS ``events.tsv`` of a run has a ``stim_file`` column whose values are paths relative
to the dataset's ``stimuli/`` folder. Every row with a ``stim_file`` is one presentation of that
audio file starting at ``onset`` seconds after the first scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bids_w2v.errors import InputError

_MISSING = {"", "n/a", "nan", "none"}


@dataclass(frozen=True)
class Presentation:
    """One playback of an audio stimulus during a run."""

    onset: float
    stim_file: Path


def resolve_stimulus(stimuli_dir: Path, value: str, *, events_file: Path, row: int) -> Path:
    """Resolve a ``stim_file`` value inside ``stimuli_dir``, refusing paths that escape it.

    Parameters
    ----------
    stimuli_dir : Path
        The dataset's ``stimuli/`` folder.
    value : str
        The ``stim_file`` value of one row.
    events_file : Path
        The events file (for error messages).
    row : int
        0-based row number (for error messages).

    Returns
    -------
    Path
        Absolute path of an existing audio file inside ``stimuli_dir``.
    """
    where = f"row {row + 1} of {events_file}"
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise InputError(
            f"{where} names the stimulus '{value}', which is not a path relative to the "
            f"dataset's stimuli/ folder. BIDS stim_file values are relative to stimuli/ "
            "(for example 'story1.wav'); absolute paths and '..' are refused so that a "
            "dataset cannot point bids-w2v at files outside it. Fix the events file."
        )
    root = stimuli_dir.resolve()
    path = (stimuli_dir / value).resolve()
    if root not in path.parents:
        raise InputError(
            f"{where} names the stimulus '{value}', which resolves to {path}, outside the "
            f"dataset's stimuli folder {root} (a symbolic link escapes it). Copy the audio "
            "into stimuli/ instead of linking to it."
        )
    if not path.is_file():
        raise InputError(
            f"{where} names the stimulus '{value}', but {stimuli_dir / value} does not exist. "
            "stim_file values are relative to the dataset's stimuli/ folder: put the audio "
            "that participants heard there, or correct the stim_file column."
        )
    return path


def read_presentations(events_file: Path, stimuli_dir: Path) -> list[Presentation]:
    """List the audio presentations of one run from its ``events.tsv``.

    Parameters
    ----------
    events_file : Path
        A BIDS ``*_events.tsv`` file with ``onset`` and ``stim_file`` columns.
    stimuli_dir : Path
        The dataset's ``stimuli/`` folder.

    Returns
    -------
    list of Presentation
        One entry per row that names a stimulus, in file order.
    """
    events_file = Path(events_file)
    try:
        table = pd.read_csv(events_file, sep="\t", dtype={"stim_file": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"The events file {events_file} cannot be read as a tab-separated table ({exc}). "
            "BIDS events files are TSV with a header row (onset, duration, ...): fix or "
            "regenerate it."
        ) from None
    missing = [c for c in ("onset", "stim_file") if c not in table.columns]
    if missing:
        raise InputError(
            f"The events file {events_file} has no {' or '.join(missing)} column (it has: "
            f"{', '.join(map(str, table.columns))}). bids-w2v needs, for every audio "
            "presentation, its onset in seconds and a stim_file column naming the audio file "
            "relative to the dataset's stimuli/ folder. Add the column."
        )
    presentations = []
    for row, (onset, stim) in enumerate(zip(table["onset"], table["stim_file"], strict=True)):
        if pd.isna(stim) or str(stim).strip().lower() in _MISSING:
            continue
        try:
            onset_s = float(onset)
        except (TypeError, ValueError):
            onset_s = float("nan")
        if onset_s != onset_s:
            raise InputError(
                f"Row {row + 1} of {events_file} names the stimulus '{stim}' but its onset "
                f"'{onset}' is not a number of seconds. Fix the onset column."
            )
        path = resolve_stimulus(stimuli_dir, str(stim).strip(), events_file=events_file, row=row)
        presentations.append(Presentation(onset=onset_s, stim_file=path))
    if not presentations:
        raise InputError(
            f"The events file {events_file} names no audio stimulus: every stim_file value is "
            "empty or n/a. Fill stim_file for the rows where audio was played."
        )
    return presentations
