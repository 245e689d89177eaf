"""Read ``events.tsv`` files: which audio stimulus starts when.

The raw BIDS ``events.tsv`` of a run has a ``stim_file`` column whose values are paths relative
to the dataset's ``stimuli/`` folder. A row with a ``stim_file`` is a presentation of that audio
file starting at ``onset`` seconds after the first scan, except that rows annotating segments of
one playback are one presentation (the Narratives rule, :func:`merge_presentations`): in
Narratives' ``pieman`` runs the rows ``0.0 13.0 music pieman_audio.wav`` and
``15.0 422.0 story pieman_audio.wav`` describe ONE playback of the file starting at 0 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import annex_objects, dataset_roots, get_command, inside, not_fetched

_MISSING = {"", "n/a", "nan", "none"}


@dataclass(frozen=True)
class Presentation:
    """One playback of an audio stimulus during a run."""

    onset: float
    stim_file: Path


def stimulus_roots(stimuli_dir: Path, value: str) -> tuple[Path, ...]:
    """Where the stimulus ``value`` may resolve: the dataset (``stimuli_dir``'s parent), its
    ``stimuli/`` folder, and the git-annex object stores of the repositories holding them and
    holding the file's own folder when that folder is inside the dataset (a subdataset, such
    as a ``stimuli/`` installed with ``datalad get -n``, has its own store)."""
    stimuli_dir = Path(os.path.abspath(stimuli_dir))
    roots = dataset_roots(stimuli_dir.parent, stimuli_dir)
    folder = Path(os.path.abspath(stimuli_dir / value)).parent
    store = annex_objects(folder) if inside(folder, roots[:2]) else None
    return roots if store is None or store in roots else (*roots, store)


def resolve_stimulus(stimuli_dir: Path, value: str, *, events_file: Path, row: int) -> Path:
    """Resolve a ``stim_file`` value inside ``stimuli_dir``, refusing paths that escape the
    dataset.

    The file may be a symbolic link that resolves inside the dataset (``stimuli_dir``'s parent)
    or into the git-annex object store of the repository holding it (a DataLad dataset,
    :mod:`bids_w2v.inputs.annex`); a link anywhere else (``/etc``, another dataset's store) is
    refused, and so is an annexed file whose content has not been fetched.

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
        Absolute path of the audio file under ``stimuli_dir`` (its own name: a link into the
        object store is not followed, so features are named after the stimulus).
    """
    where = f"row {row + 1} of {events_file}"
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise InputError(
            f"{where} names the stimulus '{value}', which is not a path relative to the "
            f"dataset's stimuli/ folder. BIDS stim_file values are relative to stimuli/ "
            "(for example 'story1.wav'); absolute paths and '..' are refused so that a "
            "dataset cannot point bids-w2v at files outside it. Fix the events file."
        )
    link = Path(os.path.normpath(stimuli_dir.resolve() / value))  # its name, links kept
    dataset = Path(os.path.abspath(stimuli_dir)).parent.resolve()
    roots = stimulus_roots(stimuli_dir, value)
    if not inside(link, roots):
        stores = [str(r) for r in roots if r.name == "objects" and r.parent.name == "annex"]
        store = f" and its git-annex object store {', '.join(stores)}" if stores else ""
        raise InputError(
            f"{where} names the stimulus '{value}', which resolves to {link.resolve()}, outside "
            f"the dataset {dataset}{store} (a symbolic link escapes it). Copy the audio into "
            "the dataset's stimuli/ folder instead of linking to it (in a DataLad dataset, "
            "`datalad save` it there)."
        )
    if not_fetched(link):
        raise InputError(
            f"{where} names the stimulus {link}, a DataLad/git-annex file whose content is "
            f"not here (not fetched). Run `{get_command([link])}` (or `git annex get` in the "
            "dataset), then run bids-w2v again."
        )
    if not link.is_file():
        raise InputError(
            f"{where} names the stimulus '{value}', but {stimuli_dir / value} does not exist. "
            "stim_file values are relative to the dataset's stimuli/ folder: put the audio "
            "that participants heard there, or correct the stim_file column."
        )
    return link


def stim_file_column(events_file: Path) -> list[str]:
    """The ``stim_file`` values of an events file (empty if it cannot be read: reading it for
    the run reports why)."""
    try:
        table = pd.read_csv(events_file, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return []
    return list(table["stim_file"]) if "stim_file" in table else []


def named_stimuli(values, stimuli_dir: Path) -> list[Path]:
    """The stimulus files that ``stim_file`` values name, for the pre-flight check (values
    that :func:`resolve_stimulus` refuses are left to it)."""
    root = Path(stimuli_dir).resolve()
    out = []
    for value in values:
        value = str(value).strip()
        if value.lower() in _MISSING or Path(value).is_absolute() or ".." in Path(value).parts:
            continue
        link = Path(os.path.normpath(root / value))
        # a file simply absent is left to resolve_stimulus, whose message names the row
        if (link.is_symlink() or link.exists()) and inside(link, stimulus_roots(root, value)):
            out.append(link)
    return out


def merge_presentations(
    presentations: Sequence[Presentation],
    duration: Callable[[Path], float] | None = None,
) -> list[Presentation]:
    """Merge the rows that annotate one playback of a file into one presentation.

    Rows of one run naming the same file whose onsets fall inside the file's playback (from the
    onset of the row that started it to that onset plus the file's duration) are segments of
    that playback, not new presentations; a row naming the file at or after the end of the
    playback starts a new presentation.

    Parameters
    ----------
    presentations : sequence of Presentation
        The rows of one run naming a stimulus.
    duration : callable, optional
        Path -> duration in seconds (default: read from the audio header); only called for
        files named by several rows.

    Returns
    -------
    list of Presentation
        The presentations, in onset order.
    """
    if duration is None:
        from bids_w2v.inputs.audio import audio_duration as duration
    counts: dict[Path, int] = {}
    for p in presentations:
        counts[p.stim_file] = counts.get(p.stim_file, 0) + 1
    lengths = {f: float(duration(f)) for f, n in counts.items() if n > 1}
    playing_until: dict[Path, float] = {}
    merged = []
    for p in sorted(presentations, key=lambda p: p.onset):
        end = playing_until.get(p.stim_file)
        if end is not None and p.onset < end - 1e-6:
            continue  # a segment of the playback already placed
        merged.append(p)
        if p.stim_file in lengths:
            playing_until[p.stim_file] = p.onset + lengths[p.stim_file]
    return merged


def shift_onsets(presentations: Sequence[Presentation], seconds: float) -> list[Presentation]:
    """Move every onset by ``seconds`` (negative: earlier), e.g. ``-4 * TR`` when the
    preprocessing removed the first 4 volumes of the acquisition."""
    return [replace(p, onset=p.onset + seconds) for p in presentations]


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
        One entry per playback, in onset order: rows naming a stimulus, with the rows that
        annotate segments of one playback merged (:func:`merge_presentations`).
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
    return merge_presentations(presentations)


#: Below this fraction of the run covered by audio, the run is refused (a unit or file mix-up).
MIN_AUDIO_COVERAGE = 0.1


def check_audio_coverage(
    presentations: Sequence[Presentation],
    *,
    n_scans: int,
    tr: float,
    run_name: str,
    source: Path | str,
    duration: Callable[[Path], float] | None = None,
) -> float:
    """Refuse a run whose audio covers almost none of its scans.

    Audio shorter or longer than the run, or with silence around it, is normal; audio playing
    during less than :data:`MIN_AUDIO_COVERAGE` of the run (or after its end) is almost always
    onsets in milliseconds or scans, the wrong file, or events of another run: the brain scores
    would be noise.

    Parameters
    ----------
    presentations : sequence of Presentation
        The run's audio presentations.
    n_scans : int
        Volumes of the run (after dropped scans).
    tr : float
        Repetition time (seconds).
    run_name : str
        The run, for the message.
    source : Path or str
        Where the onsets come from (events.tsv or the stimulus map), for the message.
    duration : callable, optional
        Path -> duration in seconds (default: read from the audio header).

    Returns
    -------
    float
        Fraction of the run during which audio plays.

    Raises
    ------
    InputError
        If the fraction is below :data:`MIN_AUDIO_COVERAGE`.
    """
    if duration is None:
        from bids_w2v.inputs.audio import audio_duration as duration
    run_length = n_scans * tr
    spans = sorted(
        (max(0.0, p.onset), min(run_length, p.onset + float(duration(p.stim_file))))
        for p in presentations
    )
    covered, reached = 0.0, 0.0
    for start, end in spans:  # length of the union of the playbacks inside the run
        start = max(start, reached)
        if end > start:
            covered += end - start
            reached = end
    fraction = covered / run_length if run_length > 0 else 0.0
    if fraction < MIN_AUDIO_COVERAGE:
        files = ", ".join(sorted({p.stim_file.name for p in presentations}))
        onsets = ", ".join(f"{p.onset:g}" for p in presentations[:5])
        raise InputError(
            f"The audio of {run_name} ({files}, onsets {onsets} s from {source}) plays during "
            f"only {covered:.1f} s of the run's {run_length:.1f} s ({n_scans} scans of "
            f"{tr:g} s). Check that the onsets are in seconds (not milliseconds or scans), that "
            "stim_file names the whole recording that was played, and that the events belong "
            "to this BOLD run."
        )
    return fraction
