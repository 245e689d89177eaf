"""Collect a participant's runs with pybids: preprocessed BOLD, mask, confounds, events, TR.

One function per step (the BOLD files, the brain mask, the confounds, the events, the TR and
the presentations); what depends on the kind of space (NIfTI, GIfTI, CIFTI) is asked of the
space's class (:mod:`bids_w2v.spaces`). Every check is made here, before any computation, with
a message naming the file, what is wrong, and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bids import BIDSLayout
from bids.layout import BIDSFile, Query

from bids_w2v.errors import InputError
from bids_w2v.inputs.events import (
    Presentation,
    check_audio_coverage,
    read_presentations,
    shift_onsets,
)
from bids_w2v.inputs.filters import CollectOptions, query_filters
from bids_w2v.inputs.located import LocatedRun
from bids_w2v.inputs.preflight import check_inputs
from bids_w2v.inputs.stimulus_map import presentations_from_map
from bids_w2v.inputs.timing import recorded_start_time, repetition_time
from bids_w2v.spaces import MapSpace, space_for


@dataclass(frozen=True)
class RunInputs:
    """Everything needed to model one fMRI run."""

    subject: str
    task: str
    session: str | None
    run: str | None
    bold: Path
    mask: Path | None  # None on surfaces (GIfTI, CIFTI): no brain mask
    confounds: Path | None
    events: Path | None  # None with a --stimulus-map
    tr: float
    n_scans: int
    presentations: tuple[Presentation, ...]
    bold_files: tuple[Path, ...] = ()  # (hemi-L, hemi-R) GIfTIs; empty: just ``bold``
    den: str | None = None  # CIFTI density entity (91k)
    tr_source: str = ""  # where the TR was read, when not in the derivative itself
    start_time: float | None = None  # StartTime (s) of a slice-time-corrected BOLD's sidecar

    @property
    def data_files(self) -> tuple[Path, ...]:
        """The run's BOLD files: the NIfTI or CIFTI, or the two hemispheres' GIfTIs."""
        return self.bold_files or (self.bold,)

    @property
    def label(self) -> str:
        """Short human-readable name of the run."""
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        parts.append(f"task-{self.task}")
        if self.run:
            parts.append(f"run-{self.run}")
        return "_".join(parts)


def _one(files: list, what: str, where: str) -> Path | None:
    if len(files) > 1:
        names = ", ".join(f.filename for f in files)
        raise InputError(
            f"Found several {what} for {where}: {names}. Narrow the query (--space with "
            ":res-N) or remove the extra files."
        )
    return Path(files[0].path) if files else None


def _presentations(
    events: Path | None,
    stimuli_dir: Path,
    entities: dict,
    options: CollectOptions,
    where: str,
    tr: float,
) -> list[Presentation]:
    """A run's presentations (events file or stimulus map), shifted by the dropped scans."""
    if options.stimulus_map is not None:
        found = presentations_from_map(
            options.stimulus_map,
            entities,
            stimuli_dir,
            map_file=options.stimulus_map_file or Path("--stimulus-map"),
            run_name=where,
        )
    else:
        found = read_presentations(events, stimuli_dir)
    return shift_onsets(found, -options.dropped_scans * tr) if options.dropped_scans else found


def _find_bolds(
    layout: BIDSLayout,
    space_cls: type[MapSpace],
    query: dict,
    options: CollectOptions,
) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
    """Step 1: the runs' BOLD files (one NIfTI, GIfTI pair or CIFTI per run)."""
    subject, task, space = query["subject"], query["task"], query["space"]
    res = query.get("res")
    found = space_cls.find_bolds(
        layout, options.desc, **{**query, **query_filters(options.filters, "bold")}
    )
    if not found:
        spaces = sorted(
            set(layout.get_spaces(scope="derivatives", subject=subject, task=task, suffix="bold"))
            | set(
                layout.get_spaces(
                    scope="derivatives", subject=subject, task=task, extension=".func.gii"
                )
            )
        )
        raise InputError(
            f"No {space_cls.bold_description(options.desc)} for sub-{subject}, task '{task}' in "
            f"space '{space}'{':res-' + res if res else ''} under the fMRIPrep derivatives. "
            f"Spaces found for this subject and task: {', '.join(spaces) or 'none'}. Choose one "
            "with --space, or re-run fMRIPrep with --output-spaces including it."
        )
    seen: dict[tuple, list[str]] = {}
    for bold_file, _ in found:
        ent = bold_file.get_entities()
        seen.setdefault((ent.get("session"), ent.get("run")), []).append(bold_file.filename)
    clashes = [names for names in seen.values() if len(names) > 1]
    if clashes:
        raise InputError(
            f"Several preprocessed BOLD files match one run of sub-{subject}, task '{task}' in "
            f"space '{space}': {', '.join(clashes[0])}. Choose one resolution with "
            f"--space {space}:res-N (or remove the extra files)."
        )
    return found


def _find_mask(
    layout: BIDSLayout,
    space_cls: type[MapSpace],
    sel: dict,
    space: str,
    res: str | None,
    options: CollectOptions,
    where: str,
) -> Path | None:
    """Step 2: the run's brain mask: ``--mask``, fMRIPrep's ``desc-brain_mask`` (volumes), or
    None (computed from the BOLD: nilearn's ``compute_multi_epi_mask``; no mask on surfaces)."""
    if options.mask is not None or not space_cls.has_brain_mask:
        return options.mask
    return _one(
        layout.get(
            scope="derivatives",
            suffix="mask",
            desc="brain",
            extension=[".nii.gz", ".nii"],
            space=space,
            **{**query_filters(options.filters, "mask"), **({"res": res} if res else {}), **sel},
        ),
        "brain masks",
        where,
    )


def _find_confounds(
    layout: BIDSLayout, sel: dict, options: CollectOptions, bold: Path, where: str
) -> Path | None:
    """Step 3: the run's fMRIPrep confounds file (required unless the strategy is none)."""
    confounds = _one(
        layout.get(
            scope="derivatives",
            suffix="timeseries",
            desc="confounds",
            extension=".tsv",
            **{**query_filters(options.filters, "confounds"), **sel},  # the run's own entities
        ),
        "confounds files",
        where,
    )
    if confounds is None and options.need_confounds:
        raise InputError(
            f"No fMRIPrep confounds file (desc-confounds_timeseries.tsv) for {bold}, but "
            "the --confounds-strategy needs one. Derivatives that are already denoised "
            "(e.g. Narratives' afni-nosmooth desc-clean files) have none: run with "
            "--confounds-strategy none; otherwise restore the confounds file."
        )
    return confounds


def _find_events(
    layout: BIDSLayout, sel: dict, options: CollectOptions, bold: Path, where: str
) -> Path | None:
    """Step 4: the run's raw events file (None with a ``--stimulus-map``)."""
    if options.stimulus_map is not None:
        return None
    events = _one(
        layout.get(
            scope="raw",
            suffix="events",
            extension=".tsv",
            **{**query_filters(options.filters, "events"), **sel},
        ),
        "events files",
        where,
    )
    if events is None:
        raise InputError(
            f"No events.tsv in the raw dataset for {where}. bids-w2v reads the audio that "
            "was played from the events file's stim_file column: add "
            f"{re.sub(r'_hemi-[LR]', '', bold.name.split('_space-')[0])}_events.tsv with "
            "onset, duration and stim_file (or give a --stimulus-map, as for Le Petit "
            "Prince, whose runs have no events files)."
        )
    return events


def locate_runs(
    layout: BIDSLayout,
    subject: str,
    task: str,
    space: str,
    res: str | None,
    options: CollectOptions | None = None,
) -> list[LocatedRun]:
    """Find the files of every run of ``task`` for ``subject`` in ``space`` (none is read)."""
    options = options or CollectOptions()
    query = {"subject": subject, "task": task, "space": space}
    if res is not None:
        query["res"] = res
    space_cls = space_for(space)
    located = []
    for bold_file, files in _find_bolds(layout, space_cls, query, options):
        ent = bold_file.get_entities()
        bold = Path(bold_file.path)
        sel = {
            "subject": subject,
            "task": task,
            "session": ent.get("session", Query.NONE),
            "run": ent.get("run", Query.NONE),
        }
        where = bold.name
        located.append(
            LocatedRun(
                bold_file=bold_file,
                files=tuple(Path(f) for f in files),
                mask=_find_mask(layout, space_cls, sel, space, res, options, where),
                confounds=_find_confounds(layout, sel, options, bold, where),
                events=_find_events(layout, sel, options, bold, where),
            )
        )
    return located


def collect_participants(
    layout: BIDSLayout,
    subjects: list[str],
    task: str | Mapping[str, Sequence[str]],
    space: str,
    res: str | None,
    options: CollectOptions | None = None,
) -> dict[str, list[RunInputs]]:
    """Collect the runs of several subjects (``task``: one for all, or per subject its tasks,
    :func:`bids_w2v.inputs.tasks.plan_tasks`; runs task by task in that order, each task's by
    session then run), after ONE pre-flight check of all their files
    (:mod:`bids_w2v.inputs.preflight`): every missing or damaged file listed at once."""
    options = options or CollectOptions()
    tasks = {s: [task] if isinstance(task, str) else list(task[s]) for s in subjects}
    located = {
        s: [run for t in tasks[s] for run in locate_runs(layout, s, t, space, res, options)]
        for s in subjects
    }
    stimuli_dir = Path(layout.root) / "stimuli"
    check_inputs(
        [f for runs in located.values() for run in runs
         for f in run.input_files(stimuli_dir, options)],
        what="input file(s) of the participant level",
        fix="Replace the missing or damaged files with complete copies (download them again, "
        "or re-run fMRIPrep for the derivatives).",
    )  # fmt: skip
    return {s: _inspect_runs(layout, located[s], s, tasks[s], space, options) for s in subjects}


def collect_runs(
    layout: BIDSLayout,
    subject: str,
    task: str,
    space: str,
    res: str | None,
    options: CollectOptions | None = None,
) -> list[RunInputs]:
    """Collect every run of ``task`` for ``subject`` in ``space``.

    Parameters
    ----------
    layout : BIDSLayout
        From :func:`~bids_w2v.inputs.layout.load_layout`.
    subject, task, space : str
        BIDS labels (subject without ``sub-``).
    res : str or None
        fMRIPrep ``res-`` label, if any.
    options : CollectOptions, optional
        ``desc-`` label, ``--bids-filter-file`` filters, stimulus map, dropped scans, mask.

    Returns
    -------
    list of RunInputs
        Sorted by session and run.
    """
    return collect_participants(layout, [subject], task, space, res, options)[subject]


def _inspect_runs(
    layout: BIDSLayout,
    located: list[LocatedRun],
    subject: str,
    tasks: Sequence[str],
    space: str,
    options: CollectOptions,
) -> list[RunInputs]:
    """Read the headers, TR and presentations of located runs (checked by the pre-flight)."""
    space_cls = space_for(space)
    stimuli_dir = Path(layout.root) / "stimuli"
    runs = []
    first: tuple | None = None  # (voxel grid or vertex layout, name) of the first run
    for found in located:
        ent = found.bold_file.get_entities()
        bold = Path(found.bold_file.path)
        files, mask, confounds, events = found.files, found.mask, found.confounds, found.events
        where = bold.name
        info = space_cls.inspect(files, mask)  # step 5: scans, header TR, grid or vertices
        if first is not None and info.layout != first[0]:
            raise space_cls.layout_error(bold, info, first[0], first[1], space)
        first = first or (info.layout, bold.name)
        tr, tr_source = repetition_time(layout, bold, info.header_tr, info.tr_source)
        presentations = tuple(_presentations(events, stimuli_dir, ent, options, where, tr))
        check_audio_coverage(
            presentations,
            n_scans=info.n_scans,
            tr=tr,
            run_name=where,
            source=options.stimulus_map_file or events or "the stimulus map",
        )
        runs.append(
            RunInputs(
                subject=subject,
                task=str(ent["task"]),
                session=ent.get("session"),
                run=str(ent["run"]) if ent.get("run") is not None else None,
                bold=bold,
                mask=mask,
                confounds=confounds,
                events=events,
                tr=tr,
                n_scans=info.n_scans,
                presentations=presentations,
                bold_files=files if len(files) > 1 else (),
                den=ent.get("den"),
                tr_source=tr_source,
                start_time=recorded_start_time(layout, bold, tr),
            )
        )
    order = {t: i for i, t in enumerate(tasks)}
    return sorted(runs, key=lambda r: (order[r.task], r.session or "", r.run or ""))
