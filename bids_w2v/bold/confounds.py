"""Confounds and scan selection of a run: which regressors to remove, which scans to keep.

Three kinds of strategy (``--confounds-strategy``):

* ``none``: the BOLD is used as it is (derivatives that are already denoised, such as the
  Narratives ``afni-nosmooth`` files);
* a nilearn preset (``simple``, ``scrubbing``, ``compcor``), loaded with
  :func:`nilearn.interfaces.fmriprep.load_confounds_strategy`;
* a list of nilearn ``load_confounds`` components (``motion wm_csf high_pass``, the default).

The scans kept for the analysis are the intersection of: nilearn's sample mask (fMRIPrep's
``non_steady_state_outlier*`` volumes dropped, and, with ``scrubbing``, high-motion volumes
censored), the ``--dummy-scans`` first volumes dropped, and ``--trim-scans START[:END]``
(globally or per task from a TSV file). The design matrix is built on the full scan grid and
the same rows are dropped from it after convolution, so BOLD, confounds and design stay aligned.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.inputs.stimulus_map import matching_rows, read_entity_table

PRESETS = ("simple", "scrubbing", "compcor")
COMPONENTS = (
    "motion",
    "high_pass",
    "wm_csf",
    "global_signal",
    "compcor",
    "ica_aroma",
    "tedana",
    "scrub",
    "non_steady_state",
)


def check_strategy(strategy: Sequence[str]) -> tuple[str, ...]:
    """Validate a ``--confounds-strategy`` value.

    Parameters
    ----------
    strategy : sequence of str
        ``("none",)``, one preset (``simple``, ``scrubbing``, ``compcor``) or a list of nilearn
        ``load_confounds`` components.

    Returns
    -------
    tuple of str
        The strategy (``("none",)`` for an empty one).
    """
    strategy = tuple(strategy) or ("none",)
    if "none" in strategy:
        if len(strategy) > 1:
            raise InputError(
                f"--confounds-strategy {' '.join(strategy)} mixes 'none' with other values; "
                "give 'none' alone (no confound regression) or only strategies."
            )
        return strategy
    presets = [s for s in strategy if s in ("simple", "scrubbing")]
    if presets:
        if len(strategy) > 1:
            raise InputError(
                f"--confounds-strategy {' '.join(strategy)}: the nilearn preset '{presets[0]}' "
                "must be given alone (presets: simple, scrubbing, compcor); or list components "
                f"instead ({', '.join(COMPONENTS)})."
            )
        return strategy
    unknown = [s for s in strategy if s not in COMPONENTS]
    if unknown:
        raise InputError(
            f"--confounds-strategy: unknown value(s) {', '.join(unknown)}. Give 'none', one "
            f"nilearn preset ({', '.join(PRESETS)}) or nilearn load_confounds components "
            f"({', '.join(COMPONENTS)})."
        )
    return strategy


def is_preset(strategy: Sequence[str]) -> bool:
    """Whether ``strategy`` is one nilearn preset (``compcor`` alone counts as the preset)."""
    return len(strategy) == 1 and strategy[0] in PRESETS


def load_run_confounds(
    img_files: str | Path | Sequence[str],
    n_scans: int,
    strategy: Sequence[str],
    *,
    source: Path | str | None = None,
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """Load the fMRIPrep confounds of one run with nilearn.

    Parameters
    ----------
    img_files : str, Path or sequence of str
        What nilearn's ``load_confounds`` takes: the fMRIPrep preprocessed BOLD (its
        ``desc-confounds_timeseries.tsv`` sits beside it), or a GIfTI pair.
    n_scans : int
        Volumes in the BOLD (the confounds must have as many rows).
    strategy : sequence of str
        See :func:`check_strategy`.
    source : Path or str, optional
        The BOLD file named in error messages (default: ``img_files``).

    Returns
    -------
    confounds : DataFrame or None
        Regressors (``None`` with ``none``).
    sample_mask : ndarray of int or None
        Scans nilearn keeps (non-steady-state volumes dropped, scrubbed volumes censored);
        ``None`` for all. With ``none``, the non-steady-state volumes of an fMRIPrep confounds
        file beside the BOLD are still dropped when there is one.
    """
    from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy

    strategy = check_strategy(strategy)
    lookup = str(img_files) if isinstance(img_files, (str, Path)) else [str(f) for f in img_files]
    bold = source if source is not None else img_files
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if strategy == ("none",):
                try:
                    _, sample_mask = load_confounds(lookup, strategy=("non_steady_state",))
                except (ValueError, FileNotFoundError, KeyError, TypeError, IndexError, OSError):
                    return None, None  # no fMRIPrep confounds file (or names): nothing to drop
                confounds = None
            elif is_preset(strategy):
                confounds, sample_mask = load_confounds_strategy(lookup, strategy[0])
            else:
                confounds, sample_mask = load_confounds(lookup, strategy=strategy)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            raise InputError(
                f"nilearn could not load the fMRIPrep confounds of {bold} with strategy "
                f"{' '.join(strategy)}: {exc}. The confounds file "
                "(..._desc-confounds_timeseries.tsv) must sit beside the BOLD file as fMRIPrep "
                "wrote it, with the columns the strategy needs; or choose --confounds-strategy "
                "none (derivatives that are already denoised)."
            ) from None
    if any("All volumes were marked as motion outliers" in str(w.message) for w in caught):
        raise InputError(
            f"The scrubbing strategy censors every volume of {bold} (its framewise displacement "
            "or DVARS exceeds nilearn's thresholds everywhere). Use --confounds-strategy simple "
            "or exclude this run (--bids-filter-file)."
        )
    if confounds is not None and len(confounds) != n_scans:
        raise InputError(
            f"The confounds of {bold} have {len(confounds)} rows but the BOLD has {n_scans} "
            "volumes. The confounds file must come from the same fMRIPrep run as the BOLD "
            "(one row per volume): re-run fMRIPrep or restore the matching file."
        )
    if sample_mask is not None:
        sample_mask = np.asarray(sample_mask, dtype=int)
        if sample_mask.size and (sample_mask.min() < 0 or sample_mask.max() >= n_scans):
            raise InputError(
                f"The confounds file of {bold} marks volumes beyond the {n_scans} of the BOLD as "
                "outliers; it comes from another run. Restore the matching confounds file."
            )
    return confounds, sample_mask


@dataclass(frozen=True)
class ScanTrim:
    """Scans dropped at the start and at the end of a run."""

    start: int = 0
    end: int = 0


def parse_trim(value: str) -> ScanTrim | Path:
    """Parse ``--trim-scans``: ``START[:END]`` scans, or a TSV file of per-task trims.

    Parameters
    ----------
    value : str
        ``"10"``, ``"10:5"`` or a path to a TSV file.

    Returns
    -------
    ScanTrim or Path
    """
    start, sep, end = value.partition(":")
    try:
        trim = ScanTrim(int(start), int(end) if sep else 0)
    except ValueError:
        return Path(value)
    if trim.start < 0 or trim.end < 0:
        raise ValueError(f"scan counts must be >= 0, got {value!r}")
    return trim


def read_trim_table(path: Path) -> pd.DataFrame:
    """Read a per-task ``--trim-scans`` TSV.

    Columns: entity filters (``task``, and optionally ``subject``, ``session``, ``run``; empty or
    ``n/a`` matches any value), then ``start`` and optionally ``end`` (scans dropped).

    Parameters
    ----------
    path : Path
        The TSV file.

    Returns
    -------
    DataFrame
        The validated table.
    """
    table = read_entity_table(path, required=("start",), optional=("end",), what="--trim-scans")
    for col in ("start", "end"):
        if col not in table:
            table[col] = 0
        values = pd.to_numeric(table[col].replace({"": "0", "n/a": "0"}), errors="coerce")
        if values.isna().any() or (values < 0).any() or (values % 1 != 0).any():
            raise InputError(
                f"The --trim-scans file {path} has a '{col}' column with values that are not "
                "whole numbers of scans >= 0. Fix the column."
            )
        table[col] = values.astype(int)
    return table


def trim_for_run(
    trim: ScanTrim | pd.DataFrame | None, entities: Mapping[str, object], *, source: str = ""
) -> ScanTrim:
    """The trim of one run: the global one, or the last matching row of a per-task table."""
    if trim is None:
        return ScanTrim()
    if isinstance(trim, ScanTrim):
        return trim
    rows = matching_rows(trim, entities)
    if rows.empty:
        return ScanTrim()
    row = rows.iloc[-1]
    return ScanTrim(int(row["start"]), int(row["end"]))


def kept_scans(
    n_scans: int,
    sample_mask: np.ndarray | None,
    *,
    dummy_scans: int = 0,
    trim: ScanTrim = ScanTrim(),
    n_confounds: int = 0,
    source: Path | str = "",
) -> np.ndarray:
    """Scans kept for the analysis of one run.

    Parameters
    ----------
    n_scans : int
        Volumes of the run.
    sample_mask : ndarray of int or None
        nilearn's sample mask (``None``: all volumes).
    dummy_scans : int
        First volumes dropped (``--dummy-scans``).
    trim : ScanTrim
        Volumes dropped at the start and end (``--trim-scans``).
    n_confounds : int
        Confound regressors (at least that many scans plus two must remain).
    source : Path or str
        The BOLD file (for error messages).

    Returns
    -------
    ndarray of int
        Sorted indices of the scans kept.
    """
    keep = np.zeros(n_scans, dtype=bool)
    keep[np.arange(n_scans) if sample_mask is None else np.asarray(sample_mask, dtype=int)] = True
    keep[: max(dummy_scans, trim.start)] = False
    if trim.end:
        keep[max(n_scans - trim.end, 0) :] = False
    kept = np.flatnonzero(keep)
    if kept.size < n_confounds + 3:
        raise InputError(
            f"Only {kept.size} of the {n_scans} volumes of {source} remain after dropping "
            f"non-steady-state, dummy ({dummy_scans}), trimmed ({trim.start} at the start, "
            f"{trim.end} at the end) and censored volumes, too few for {n_confounds} confound "
            "regressors. Lower --dummy-scans/--trim-scans, choose a lighter "
            "--confounds-strategy, or exclude the run."
        )
    return kept


def parse_high_pass(value: str) -> float:
    """Parse ``--high-pass``: a cutoff in Hz (``0.008``, ``0.008Hz``) or a period (``128s``).

    A bare number below 1 is a frequency in Hz (nilearn's ``high_pass``); a bare number of 1 or
    more is a period in seconds (fMRIPrep's and SPM's 128 s convention). Returns Hz.
    """
    text = value.strip().lower()
    try:
        if text.endswith("hz"):
            hz = float(text[:-2])
        elif text.endswith("s"):
            hz = 1.0 / float(text[:-1])
        else:
            number = float(text)
            hz = number if number < 1 else 1.0 / number
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a cutoff: {value!r} (e.g. 128s or 0.008Hz)") from None
    if not hz > 0 or not np.isfinite(hz):
        raise ValueError(f"the cutoff must be positive, got {value!r}")
    return hz


def scan_trims(runs: Sequence, trim: ScanTrim | pd.DataFrame | None) -> list[tuple[int, int]]:
    """Per run, the (start, end) scans trimmed.

    ``runs`` are :class:`~bids_w2v.inputs.layout.RunInputs`.
    """
    out = []
    for run in runs:
        entities = {"subject": run.subject, "session": run.session, "task": run.task,
                    "run": run.run}  # fmt: skip
        t = trim_for_run(trim, entities, source=str(run.bold))
        out.append((t.start, t.end))
    return out
