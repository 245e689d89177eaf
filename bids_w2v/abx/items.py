"""The ABX item file of ZeroSpeech / ABXpy, and the frames of an item.

The file has a header line and one item per line, separated by white space::

    #file onset offset #phone prev-phone next-phone speaker
    s1_bat 0.05 0.31 ae b t s1

``file`` names an audio file (without extension) in the audio folder; ``onset`` and ``offset``
are seconds in that file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError

__all__ = ["COLUMNS", "check_spans", "frame_slice", "read_items"]

COLUMNS = ["file", "onset", "offset", "phone", "prev", "next", "speaker"]


def read_items(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an ABX item file.

    Parameters
    ----------
    path : str or path-like
        Item file (first line is a header, then 7 white-space separated fields per line).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` plus ``context`` (``"prev+next"``), one row per item in file
        order; onsets and offsets as floats.

    Raises
    ------
    InputError
        If the file is missing, has a line without 7 fields, non-numeric or reversed times,
        or no item.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"The ABX item file '{path}' cannot be read ({exc}). Give the path of a text file "
            "in the ZeroSpeech format '#file onset offset #phone prev-phone next-phone speaker'."
        ) from exc
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 7:
            raise InputError(
                f"Line {number} of the ABX item file '{path}' has {len(fields)} fields; each "
                "item needs 7: file onset offset phone prev-phone next-phone speaker (the first "
                "line is a header). Fix or remove that line."
            )
        try:
            onset, offset = float(fields[1]), float(fields[2])
        except ValueError:
            onset = offset = math.nan
        if not (math.isfinite(onset) and math.isfinite(offset) and 0 <= onset < offset):
            raise InputError(
                f"Line {number} of the ABX item file '{path}' has onset {fields[1]!r} and offset "
                f"{fields[2]!r}; they must be seconds with 0 <= onset < offset. Fix that line."
            )
        rows.append([fields[0], onset, offset, *fields[3:]])
    if not rows:
        raise InputError(
            f"The ABX item file '{path}' holds no item. After a header line, give one item per "
            "line: file onset offset phone prev-phone next-phone speaker."
        )
    items = pd.DataFrame(rows, columns=COLUMNS)
    items["context"] = items["prev"] + "+" + items["next"]
    return items


def frame_slice(onset: float, offset: float, frame_rate: float, n_frames: int) -> slice:
    """Frames of a span, as ZeroSpeech 2021 (libri-light) takes them.

    Frame ``j`` is taken to be centred at ``(j + 0.5) / frame_rate`` seconds; the span keeps
    frames ``ceil(rate * onset - 0.5)`` to ``floor(rate * offset - 0.5)`` (excluded), clipped
    to the features. The slice is empty when the span is shorter than a frame.

    Parameters
    ----------
    onset, offset : float
        Seconds from the start of the features.
    frame_rate : float
        Frames per second.
    n_frames : int
        Frames available.

    Returns
    -------
    slice
    """
    start = max(0, int(math.ceil(frame_rate * onset - 0.5)))
    stop = min(n_frames, int(math.floor(frame_rate * offset - 0.5)))
    return slice(start, max(start, stop))


def check_spans(items: pd.DataFrame, lengths: np.ndarray, where: str) -> None:
    """Refuse items whose span holds no frame (one message naming them)."""
    empty = np.flatnonzero(np.asarray(lengths) == 0)
    if empty.size:
        first = items.iloc[empty[0]]
        raise InputError(
            f"{empty.size} item(s) of the ABX item file {where} hold no feature frame, e.g. "
            f"'{first['file']}' {first['onset']}-{first['offset']} s (shorter than a frame, or "
            "past the end of the audio). Remove them or widen their onset/offset."
        )
