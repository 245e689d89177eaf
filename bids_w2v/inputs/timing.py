"""A run's timing read from its files: the TR when the derivative carries none, and the
slice-timing reference the preprocessing recorded.

- Derivatives of other pipelines (AFNI's GIfTI surfaces, for one) may have neither a sidecar
  nor a ``TimeStep``: :func:`raw_repetition_time` takes the TR of the raw BOLD with the same
  entities (its JSON sidecar through BIDS inheritance, then its NIfTI header).
- fMRIPrep slice-time-corrects to the middle of the acquisition and records it in the
  preprocessed BOLD's sidecar (``SliceTimingCorrected: true``, ``StartTime`` in seconds):
  :func:`recorded_start_time` reads it, and each volume then represents ``StartTime + i * TR``.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
from bids import BIDSLayout
from bids.layout import Query

from bids_w2v.errors import InputError
from bids_w2v.inputs.preflight import file_problem, reading
from bids_w2v.spaces import header_tr

#: entities shared by a preprocessed BOLD and the raw BOLD it comes from
RAW_ENTITIES = (
    "subject",
    "session",
    "task",
    "acquisition",
    "ceagent",
    "reconstruction",
    "direction",
    "run",
    "echo",
)


def _entities(layout: BIDSLayout, bold: Path) -> dict:
    found = layout.get_file(str(bold), scope="all")
    return found.get_entities() if found is not None else layout.parse_file_entities(str(bold))


def raw_bolds(layout: BIDSLayout, bold: Path) -> list[Path]:
    """The raw BOLD NIfTIs with the same entities as the derivative ``bold`` (several for the
    echoes of a multi-echo run, whose optimally combined derivative has no ``echo-``)."""
    ent = _entities(layout, bold)
    query = {k: ent.get(k, Query.NONE) for k in RAW_ENTITIES if k in ent or k in ("session", "run")}
    found = layout.get(
        scope="raw", suffix="bold", extension=[".nii.gz", ".nii"], return_type="file", **query
    )
    return sorted(Path(f) for f in found)


def _one_raw_tr(layout: BIDSLayout, raw: Path, bold: Path) -> tuple[float, str] | None:
    """The TR of one raw BOLD: its sidecar (BIDS inheritance) checked against its header."""
    sidecar = layout.get_metadata(str(raw)).get("RepetitionTime")
    if sidecar is not None and (
        isinstance(sidecar, bool) or not isinstance(sidecar, (int, float)) or sidecar <= 0
    ):
        raise InputError(
            f"The RepetitionTime of the raw BOLD {raw} (read because {bold.name} carries none) "
            f"is {sidecar!r} in its JSON sidecar, not a positive number of seconds. Fix the "
            "sidecar (or add RepetitionTime to the derivative's sidecar)."
        )
    header = None
    if file_problem(raw) is None:  # an unfetched raw file is fine when its sidecar has the TR
        with reading(raw):
            header = header_tr(nb.load(str(raw)))
    if sidecar is not None and header is not None and abs(header - sidecar) > 1e-3:
        raise InputError(
            f"{bold.name} carries no repetition time, and the raw BOLD {raw} disagrees with "
            f"itself: {sidecar} s in its JSON sidecar but {header:g} s in its NIfTI header. "
            "Correct the one that is wrong (the sidecar's RepetitionTime or the header's "
            "pixdim[4]), or add RepetitionTime to the derivative's sidecar."
        )
    if sidecar is not None:
        return float(sidecar), f"the JSON sidecar of the raw BOLD {raw.name} (BIDS inheritance)"
    if header is not None:
        return header, f"the NIfTI header of the raw BOLD {raw.name}"
    return None


def raw_repetition_time(layout: BIDSLayout, bold: Path) -> tuple[float, str] | None:
    """The TR of the raw BOLD with ``bold``'s entities: its sidecar (BIDS inheritance), then
    its NIfTI header; both are checked against each other when both are readable, and the
    echoes of a multi-echo run against each other.

    Returns
    -------
    (float, str) or None
        The TR in seconds and where it was read (for the log), or None if the raw BOLD is
        absent or gives none.

    Raises
    ------
    InputError
        If the raw sidecar's value is not a positive number, the raw sidecar and header
        disagree, or several matching raw files have different TRs.
    """
    found = [(raw, tr) for raw in raw_bolds(layout, bold) if (tr := _one_raw_tr(layout, raw, bold))]
    if not found:
        return None
    values = {round(tr[0], 3) for _, tr in found}
    if len(values) > 1:
        listed = ", ".join(f"{raw.name}: {tr[0]:g} s" for raw, tr in found)
        raise InputError(
            f"{bold.name} carries no repetition time, and the raw BOLD files with its entities "
            f"disagree ({listed}). Add RepetitionTime (seconds) to the derivative's JSON "
            "sidecar, or narrow the raw files to the one it comes from."
        )
    return found[0][1]


def repetition_time(
    layout: BIDSLayout, bold: Path, header: float | None, source: str = "NIfTI header"
) -> tuple[float, str]:
    """The run's TR (sidecar, checked against the ``source`` header: NIfTI, CIFTI series axis,
    GIfTI TimeStep; else the raw BOLD's, :mod:`~bids_w2v.inputs.timing`) and where it was read
    when not in the derivative ("" otherwise)."""
    sidecar = layout.get_metadata(str(bold)).get("RepetitionTime")
    if sidecar is None and header is None:
        raw = raw_repetition_time(layout, bold)
        if raw is not None:
            return raw
        raise InputError(
            f"No repetition time for {bold}: neither its JSON sidecar (RepetitionTime), nor "
            f"the {source}, nor the raw BOLD with the same entities (its sidecar or header) "
            'gives one. Add "RepetitionTime" (seconds) to the sidecar.'
        )
    if sidecar is not None and (not isinstance(sidecar, (int, float)) or sidecar <= 0):
        raise InputError(
            f"The RepetitionTime of {bold} in its JSON sidecar is {sidecar!r}, not a positive "
            "number of seconds. Fix the sidecar."
        )
    if sidecar is not None and header is not None and abs(header - sidecar) > 1e-3:
        fix = {
            "NIfTI header": "the header's pixdim[4] (nibabel: img.header.set_zooms(...))",
            "CIFTI series axis": "the CIFTI series axis step",
            "GIfTI TimeStep metadata": "the GIfTI TimeStep metadata",
        }.get(source, f"the {source}")
        raise InputError(
            f"The repetition time of {bold} is {sidecar} s in its JSON sidecar but {header:g} s "
            f"in the {source}. One of them is wrong, and the design would be misaligned "
            f"with the scans: correct the sidecar's RepetitionTime or {fix} so that they agree."
        )
    return float(sidecar if sidecar is not None else header), ""


def recorded_start_time(layout: BIDSLayout, bold: Path, tr: float) -> float | None:
    """``StartTime`` (s) of a slice-time-corrected BOLD's sidecar, None if not corrected.

    Raises
    ------
    InputError
        If the sidecar says ``SliceTimingCorrected: true`` with a ``StartTime`` that is not a
        number of seconds in ``[0, TR)``.
    """
    meta = layout.get_metadata(str(bold))
    if meta.get("SliceTimingCorrected") is not True or "StartTime" not in meta:
        return None
    start = meta["StartTime"]
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start < tr:
        raise InputError(
            f"The JSON sidecar of {bold} says SliceTimingCorrected: true with StartTime "
            f"{start!r}, not a number of seconds in [0, {tr:g}) (the repetition time). Fix "
            "StartTime (fMRIPrep writes the time the slices were corrected to), or set the "
            "reference yourself with --slice-time-ref FRACTION."
        )
    return float(start)


def tr_notes(runs) -> list[str]:
    """Log lines for the runs whose TR was not read from the derivative itself."""
    return [
        f"{run.label}: repetition time {run.tr:g} s taken from {run.tr_source}, as "
        f"{run.bold.name} carries none"
        for run in runs
        if run.tr_source
    ]
