"""The time each scan represents: the slice-timing reference of every run (``--slice-time-ref``).

The design is sampled at ``(i + ref) * TR`` (nilearn's ``slice_time_ref``). fMRIPrep
slice-time-corrects to the middle of the acquisition and records it in the preprocessed BOLD's
sidecar (``SliceTimingCorrected: true``, ``StartTime`` in seconds), so with ``auto`` (the
default) each run's reference is ``StartTime / TR``; a run whose sidecar records no correction
gets 0 (the start of each TR, the authors' ``i * TR``), said in the log. A number gives every
run that fraction of the TR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

AUTO = "auto"


@dataclass(frozen=True)
class SliceTimeRef:
    """One run's slice-timing reference and where it comes from."""

    run: str  # the run's label (sub-01_task-x_run-1)
    value: float  # fraction of the TR
    source: str  # "sidecar" (StartTime / TR), "none recorded" (auto, fell back to 0), "option"


def resolve_slice_time_ref(setting: float | str, run) -> SliceTimeRef:
    """The reference of one run for ``--slice-time-ref`` ``setting``.

    Parameters
    ----------
    setting : "auto" or float
        ``auto`` reads the run's recorded ``StartTime``; a number in [0, 1] is used as is.
    run : RunInputs
        The run (``label``, ``tr``, ``start_time``: the sidecar's StartTime or None).

    Returns
    -------
    SliceTimeRef
    """
    if setting != AUTO:
        return SliceTimeRef(run.label, float(setting), "option")
    if run.start_time is None:
        return SliceTimeRef(run.label, 0.0, "none recorded")
    return SliceTimeRef(run.label, round(run.start_time / run.tr, 6), "sidecar")


def slice_time_refs(setting: float | str, runs: Sequence) -> list[SliceTimeRef]:
    """:func:`resolve_slice_time_ref` of every run, in the runs' order."""
    return [resolve_slice_time_ref(setting, run) for run in runs]


def describe_slice_time_refs(refs: Sequence[SliceTimeRef]) -> list[str]:
    """Log lines saying which reference each run got (one line per value and source)."""
    groups: dict[tuple[float, str], list[str]] = {}
    for ref in refs:
        groups.setdefault((ref.value, ref.source), []).append(ref.run)
    lines = []
    for (value, source), runs in sorted(groups.items()):
        names = ", ".join(runs[:3]) + (", ..." if len(runs) > 3 else "")
        where = f"{len(runs)} run(s) ({names})"
        if source == "sidecar":
            why = "StartTime / RepetitionTime of the slice-time-corrected BOLD's sidecar"
        elif source == "none recorded":
            why = (
                "no slice-timing correction recorded in the preprocessed BOLD's sidecar "
                "(SliceTimingCorrected, StartTime): scans taken at the start of each TR; give "
                "--slice-time-ref FRACTION if the data were corrected to another time"
            )
        else:
            why = "--slice-time-ref"
        lines.append(f"slice-time reference {value:g} of the TR for {where}: {why}")
    return lines
