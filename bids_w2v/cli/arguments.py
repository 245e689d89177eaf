"""Types of the command-line arguments: each parses and checks one value (argparse ``type=``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def derivative(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep:
        return "fmriprep", Path(value)
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def memory_gb(value: str) -> float:
    """Parse fMRIPrep's ``--mem`` (MB by default, or with a KB/MB/GB/TB unit) into GB."""
    units = {"k": 1e-6, "m": 1e-3, "g": 1.0, "t": 1e3}
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    scale = units["m"]
    if text and text[-1] in units:
        scale, text = units[text[-1]], text[:-1]
    try:
        amount = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory size: {value!r} (e.g. 16GB)") from None
    if amount <= 0:
        raise argparse.ArgumentTypeError(f"memory must be positive, got {value!r}")
    return amount * scale


def fdr_level(value: str) -> float:
    level = float(value)
    if not 0 < level < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return level


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def trim(value: str):
    from bids_w2v.bold.confounds import parse_trim

    try:
        return parse_trim(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def high_pass(value: str) -> float:
    from bids_w2v.bold.confounds import parse_high_pass

    try:
        return parse_high_pass(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def slice_time_ref(value: str) -> float | str:
    """``auto`` or a fraction of the TR in [0, 1] (nilearn's ``slice_time_ref``)."""
    if value == "auto":
        return value
    try:
        fraction = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a fraction of the TR between 0 and 1, got {value!r}"
        ) from None
    if not 0 <= fraction <= 1:
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or between 0 and 1 (a fraction of the TR), got {value}"
        )
    return fraction
