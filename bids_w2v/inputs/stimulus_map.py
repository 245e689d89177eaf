"""A stimulus map (``--stimulus-map TSV``) for datasets without ``events.tsv``.

Le Petit Prince (OpenNeuro ds003643) has no events files: each run plays one section of the
book, and its run numbers are not its section numbers (English runs are ``run-15`` ...
``run-23``). The map says which audio each run played, one row per presentation::

    task    run  stim_file                  onset
    lppEN   15   task-lppEN_section-1.wav   0
    lppEN   16   task-lppEN_section-2.wav   0

Entity columns (``subject``, ``session``, ``task``, ``acquisition``, ``run``; BIDS short names
``sub``, ``ses``, ``acq`` are accepted) select runs; an empty or ``n/a`` cell matches any
value. ``stim_file`` is relative to the dataset's ``stimuli/`` folder (confined to it, as in
``events.tsv``) and ``onset`` is in seconds from the first scan of the raw acquisition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import not_fetched
from bids_w2v.inputs.events import Presentation, merge_presentations, resolve_stimulus
from bids_w2v.inputs.preflight import file_problem, problems_error

ENTITY_COLUMNS = ("subject", "session", "task", "acquisition", "run")
_ALIASES = {"sub": "subject", "ses": "session", "acq": "acquisition"}
_PREFIXES = {"subject": "sub-", "session": "ses-", "task": "task-", "acquisition": "acq-",
             "run": "run-"}  # fmt: skip
_MISSING = {"", "n/a", "nan", "none", "*"}


def read_entity_table(
    path: Path, *, required: Sequence[str], optional: Sequence[str] = (), what: str
) -> pd.DataFrame:
    """Read a TSV whose first columns are BIDS entity filters.

    Parameters
    ----------
    path : Path
        The TSV file.
    required, optional : sequence of str
        Value columns (besides the entity columns).
    what : str
        The option that gave the file (for error messages).

    Returns
    -------
    DataFrame
        All cells as stripped strings; entity columns renamed to pybids' long names.
    """
    path = Path(path)
    if not_fetched(path):
        raise problems_error([file_problem(path)], what=f"{what} file", fix="")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"The {what} file {path} does not exist. Fix the path.") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"The {what} file {path} cannot be read as a tab-separated table with a header "
            f"row ({exc}). Fix the file."
        ) from None
    table = table.rename(columns=lambda c: _ALIASES.get(c.strip(), c.strip()))
    missing = [c for c in required if c not in table.columns]
    unknown = [c for c in table.columns if c not in (*ENTITY_COLUMNS, *required, *optional)]
    if missing or unknown:
        raise InputError(
            f"The {what} file {path} has columns {', '.join(table.columns)}: "
            + (f"missing {', '.join(missing)}; " if missing else "")
            + (f"unknown {', '.join(unknown)}; " if unknown else "")
            + f"it needs entity columns (any of {', '.join(ENTITY_COLUMNS)}) then "
            f"{', '.join(required)}{' and optionally ' + ', '.join(optional) if optional else ''}."
        )
    for col in table.columns:
        table[col] = table[col].astype(str).str.strip()
    for col in ENTITY_COLUMNS:
        if col in table:
            prefix = _PREFIXES[col]
            table[col] = [v[len(prefix) :] if v.startswith(prefix) else v for v in table[col]]
    return table


def _same(cell: str, value: object) -> bool:
    if cell.lower() in _MISSING:
        return True
    if value is None:
        return False
    text = str(value)
    if cell.isdigit() and text.isdigit():
        return int(cell) == int(text)
    return cell == text


def matching_rows(table: pd.DataFrame, entities: Mapping[str, object]) -> pd.DataFrame:
    """Rows of an entity table that match a run's entities (empty cells match anything)."""
    mask = pd.Series(True, index=table.index)
    for col in ENTITY_COLUMNS:
        if col in table:
            mask &= table[col].map(lambda cell, v=entities.get(col): _same(cell, v))
    return table[mask]


def read_stimulus_map(path: Path) -> pd.DataFrame:
    """Read and check a ``--stimulus-map`` TSV (entity columns, ``stim_file``, ``onset``)."""
    table = read_entity_table(path, required=("stim_file", "onset"), what="--stimulus-map")
    onsets = pd.to_numeric(table["onset"], errors="coerce")
    bad = table.index[onsets.isna()].tolist()
    if bad:
        raise InputError(
            f"Row {bad[0] + 1} of the --stimulus-map file {path} has the onset "
            f"'{table.loc[bad[0], 'onset']}', not a number of seconds. Fix the onset column."
        )
    if not any(c in table for c in ENTITY_COLUMNS):
        raise InputError(
            f"The --stimulus-map file {path} has no entity column (task, run, ...), so it "
            "cannot say which run played which audio. Add at least a task or run column."
        )
    table["onset"] = onsets.astype(float)
    return table


def presentations_from_map(
    table: pd.DataFrame,
    entities: Mapping[str, object],
    stimuli_dir: Path,
    *,
    map_file: Path,
    run_name: str,
) -> list[Presentation]:
    """The presentations of one run according to a stimulus map.

    Parameters
    ----------
    table : DataFrame
        From :func:`read_stimulus_map`.
    entities : mapping
        The run's BIDS entities (``subject``, ``session``, ``task``, ``run``).
    stimuli_dir : Path
        The dataset's ``stimuli/`` folder.
    map_file : Path
        The map (for error messages).
    run_name : str
        The run's BOLD file name (for error messages).

    Returns
    -------
    list of Presentation
        In map order, rows naming one playback merged (:func:`merge_presentations`).
    """
    rows = matching_rows(table, entities)
    if rows.empty:
        raise InputError(
            f"The --stimulus-map file {map_file} has no row for {run_name} (entities "
            f"{', '.join(f'{k}={v}' for k, v in entities.items() if v is not None)}). Add a "
            "row naming the audio this run played, or exclude the run with --bids-filter-file."
        )
    presentations = [
        Presentation(
            onset=float(row.onset),
            stim_file=resolve_stimulus(stimuli_dir, row.stim_file, events_file=map_file, row=i),
        )
        for i, row in zip(rows.index, rows.itertuples(index=False), strict=True)
    ]
    return merge_presentations(presentations)
