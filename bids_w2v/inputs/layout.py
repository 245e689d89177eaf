"""Find a participant's runs with pybids: preprocessed BOLD, mask, confounds, events, stimuli.

All checks that can be made before any computation are made here, so that a bad dataset fails
in seconds with a message naming the file, what is wrong, and how to fix it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
from bids import BIDSLayout
from bids.layout import Query

from bids_w2v.errors import InputError
from bids_w2v.inputs.events import (
    Presentation,
    check_audio_coverage,
    read_presentations,
    shift_onsets,
)
from bids_w2v.inputs.filters import CollectOptions, query_filters
from bids_w2v.inputs.stimulus_map import presentations_from_map
from bids_w2v.spaces import find_surface_bolds, inspect_series, space_kind


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


def strip_prefix(label: str, prefix: str = "sub-") -> str:
    """Remove an optional BIDS prefix (``sub-01`` -> ``01``)."""
    return label[len(prefix) :] if label.startswith(prefix) else label


def parse_space(space: str) -> tuple[str, str | None]:
    """Split fMRIPrep's ``SPACE[:res-N]`` notation into space and resolution."""
    name, _, rest = space.partition(":")
    res = None
    for item in filter(None, rest.split(":")):
        key, _, value = item.partition("-")
        if key == "res" and value:
            res = value
        else:
            raise InputError(
                f"--space '{space}' is not understood: after the space name only ':res-N' is "
                "accepted (fMRIPrep's notation, e.g. MNI152NLin2009cAsym:res-2)."
            )
    return name, res


def check_dataset(bids_dir: Path) -> None:
    """Check that ``bids_dir`` is a BIDS dataset with a valid ``dataset_description.json``."""
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise InputError(
            f"The BIDS dataset folder {bids_dir} does not exist. Give the path to the raw "
            "BIDS dataset (the folder holding dataset_description.json) as first argument."
        )
    desc = bids_dir / "dataset_description.json"
    try:
        data = json.loads(desc.read_text())
    except FileNotFoundError:
        raise InputError(
            f"{desc} is missing, so {bids_dir} is not a BIDS dataset. Point bids-w2v at the "
            "root of the raw dataset, or add a dataset_description.json with at least "
            '"Name" and "BIDSVersion".'
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(
            f'{desc} is not valid JSON ({exc}). Fix the file: it needs at least "Name" and '
            '"BIDSVersion".'
        ) from None
    if not isinstance(data, dict) or "BIDSVersion" not in data:
        raise InputError(
            f'{desc} has no "BIDSVersion" field. Add it (e.g. "BIDSVersion": "1.10.0").'
        )


def load_layout(bids_dir: Path, fmriprep_dir: Path, *, validate: bool) -> BIDSLayout:
    """Index the raw dataset and its fMRIPrep derivatives with pybids.

    Parameters
    ----------
    bids_dir : Path
        Raw BIDS dataset.
    fmriprep_dir : Path
        fMRIPrep derivatives folder.
    validate : bool
        Let pybids skip files that are not valid BIDS names.

    Returns
    -------
    BIDSLayout
        A layout whose ``scope='derivatives'`` holds the fMRIPrep outputs.
    """
    check_dataset(bids_dir)
    fmriprep_dir = Path(fmriprep_dir)
    if not fmriprep_dir.is_dir():
        raise InputError(
            f"No fMRIPrep derivatives at {fmriprep_dir}. Run fMRIPrep first, or point "
            "bids-w2v at its output with -d fmriprep=/path/to/fmriprep."
        )
    described = (fmriprep_dir / "dataset_description.json").is_file()
    if not described and not any(p.is_dir() for p in fmriprep_dir.glob("sub-*")):
        raise InputError(
            f"{fmriprep_dir} has neither a dataset_description.json nor sub-* folders, so it "
            "holds no derivatives. Point -d NAME=PATH at the folder the preprocessing wrote "
            "(the one holding the sub-* folders)."
        )
    try:
        derivatives = [str(fmriprep_dir)] if described else False
        layout = BIDSLayout(str(bids_dir), validate=validate, derivatives=derivatives)
        if not described:
            # Le Petit Prince (ds003643) places its derivatives directly in derivatives/sub-*/
            # without a dataset_description.json; pybids indexes such a folder unvalidated
            layout.derivatives[fmriprep_dir.name] = BIDSLayout(
                str(fmriprep_dir),
                is_derivative=True,
                validate=False,
                config=["bids", "derivatives"],
                sources=layout,
            )
        return layout
    except Exception as exc:  # pybids raises many types for malformed datasets
        raise InputError(
            f"pybids could not index {bids_dir} with derivatives {fmriprep_dir}: {exc}. Check "
            "that both folders are BIDS datasets (the derivatives' dataset_description.json "
            "needs a GeneratedBy or PipelineDescription entry)."
        ) from None


def select_task(layout: BIDSLayout, task: str | None) -> str:
    """Return the task to analyse: the one given, or the dataset's only task."""
    tasks = sorted(layout.get_tasks(scope="raw"))
    if task is None:
        if len(tasks) == 1:
            return tasks[0]
        raise InputError(
            f"The dataset {layout.root} has {len(tasks)} tasks ({', '.join(tasks) or 'none'}); "
            "choose one with --task."
        )
    if task not in tasks:
        raise InputError(
            f"Task '{task}' is not in the dataset {layout.root}; it has: "
            f"{', '.join(tasks) or 'no task at all'}. Fix --task."
        )
    return task


def select_subjects(layout: BIDSLayout, labels: tuple[str, ...]) -> list[str]:
    """Return the subjects to analyse (``--participant-label``, or all)."""
    available = sorted(layout.get_subjects(scope="raw"))
    if not labels:
        if not available:
            raise InputError(f"The dataset {layout.root} has no sub-* folder.")
        return available
    wanted = [strip_prefix(lab) for lab in labels]
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise InputError(
            f"Participant(s) {', '.join('sub-' + s for s in unknown)} not found in "
            f"{layout.root}; it has: {', '.join('sub-' + s for s in available) or 'none'}. "
            "Fix --participant-label."
        )
    return wanted


def _one(files: list, what: str, where: str) -> Path | None:
    if len(files) > 1:
        names = ", ".join(f.filename for f in files)
        raise InputError(
            f"Found several {what} for {where}: {names}. Narrow the query (--space with "
            ":res-N) or remove the extra files."
        )
    return Path(files[0].path) if files else None


def _header_tr(img: nb.Nifti1Image) -> float | None:
    """The TR in seconds from a NIfTI header (pixdim[4] with its time unit), if set."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    return float(zooms[3]) * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)


def _repetition_time(
    layout: BIDSLayout, bold: Path, header: float | None, source: str = "NIfTI header"
) -> float:
    """The run's TR: the JSON sidecar's RepetitionTime, checked against the file's header.

    ``source`` names where ``header`` comes from (NIfTI header, CIFTI series axis, GIfTI
    TimeStep metadata).
    """
    sidecar = layout.get_metadata(str(bold)).get("RepetitionTime")
    if sidecar is None and header is None:
        raise InputError(
            f"No repetition time for {bold}: neither its JSON sidecar (RepetitionTime) nor "
            f'the {source} gives one. Add "RepetitionTime" (seconds) to the sidecar.'
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
    return float(sidecar if sidecar is not None else header)


def _describe_layout(layout: tuple) -> str:
    """Vertices per hemisphere, or CIFTI structures, for error messages."""
    if all(isinstance(n, int) for n in layout):
        return " and ".join(f"{n} vertices in hemi-{h}" for h, n in zip("LR", layout, strict=True))
    return f"{sum(n for _, n in layout)} grayordinates"


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
        From :func:`load_layout`.
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
    options = options or CollectOptions()
    filters = options.filters
    query = {"subject": subject, "task": task, "space": space}
    if res is not None:
        query["res"] = res
    kind = space_kind(space)
    files_of: dict[str, tuple[Path, ...]] = {}
    if kind == "volume":
        bolds = layout.get(
            scope="derivatives",
            suffix="bold",
            desc=options.desc,
            extension=[".nii.gz", ".nii"],
            **{**query, **query_filters(filters, "bold")},
        )
    else:  # GIfTI pairs (fsaverage*, fsnative) or CIFTI (fsLR)
        extra = {} if options.desc == "preproc" else {"desc": options.desc}
        extra.update(query_filters(filters, "bold"))
        found = find_surface_bolds(layout, kind, **{**query, **extra})
        bolds = [f for f, _ in found]
        files_of = {f.path: files for f, files in found}
    if not bolds:
        spaces = sorted(
            set(layout.get_spaces(scope="derivatives", subject=subject, task=task, suffix="bold"))
            | set(
                layout.get_spaces(
                    scope="derivatives", subject=subject, task=task, extension=".func.gii"
                )
            )
        )
        what = {
            "volume": f"preprocessed BOLD (desc-{options.desc}_bold)",
            "surface": "surface BOLD (hemi-L/hemi-R ..._bold.func.gii)",
            "cifti": "CIFTI BOLD (..._bold.dtseries.nii)",
        }[kind]
        raise InputError(
            f"No {what} for sub-{subject}, task '{task}' in space "
            f"'{space}'{':res-' + res if res else ''} under the fMRIPrep derivatives. Spaces "
            f"found for this subject and task: {', '.join(spaces) or 'none'}. Choose one with "
            "--space, or re-run fMRIPrep with --output-spaces including it."
        )
    seen: dict[tuple, list[str]] = {}
    for bold_file in bolds:
        ent = bold_file.get_entities()
        seen.setdefault((ent.get("session"), ent.get("run")), []).append(bold_file.filename)
    clashes = [names for names in seen.values() if len(names) > 1]
    if clashes:
        raise InputError(
            f"Several preprocessed BOLD files match one run of sub-{subject}, task '{task}' in "
            f"space '{space}': {', '.join(clashes[0])}. Choose one resolution with "
            f"--space {space}:res-N (or remove the extra files)."
        )
    stimuli_dir = Path(layout.root) / "stimuli"
    runs = []
    first_layout: tuple | None = None  # (voxel grid or vertex layout, name) of the first run
    for bold_file in bolds:
        ent = bold_file.get_entities()
        bold = Path(bold_file.path)
        sel = {
            "subject": subject,
            "task": task,
            "session": ent.get("session", Query.NONE),
            "run": ent.get("run", Query.NONE),
        }
        where = bold.name
        mask = options.mask
        if kind == "volume" and mask is None:
            mask = _one(
                layout.get(
                    scope="derivatives",
                    suffix="mask",
                    desc="brain",
                    extension=[".nii.gz", ".nii"],
                    space=space,
                    **{**query_filters(filters, "mask"), **({"res": res} if res else {}), **sel},
                ),
                "brain masks",
                where,
            )  # None: computed from the BOLD (nilearn compute_multi_epi_mask)
        confounds = _one(
            layout.get(
                scope="derivatives",
                suffix="timeseries",
                desc="confounds",
                extension=".tsv",
                **{**query_filters(filters, "confounds"), **sel},  # the run's own entities win
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
        events = None
        if options.stimulus_map is None:
            events = _one(
                layout.get(
                    scope="raw",
                    suffix="events",
                    extension=".tsv",
                    **{**query_filters(filters, "events"), **sel},
                ),
                "events files",
                where,
            )
        if events is None and options.stimulus_map is None:
            raise InputError(
                f"No events.tsv in the raw dataset for {where}. bids-w2v reads the audio that "
                "was played from the events file's stim_file column: add "
                f"{re.sub(r'_hemi-[LR]', '', bold.name.split('_space-')[0])}_events.tsv with "
                "onset, duration and stim_file (or give a --stimulus-map, as for Le Petit "
                "Prince, whose runs have no events files)."
            )
        if kind == "volume":
            img = nb.load(str(bold))
            if img.ndim != 4:
                raise InputError(f"{bold} is not a 4-D BOLD series (shape {img.shape}).")
            mask_img = nb.load(str(mask)) if mask is not None else img
            if mask_img.shape[:3] != img.shape[:3] or not np.allclose(
                mask_img.affine, img.affine, atol=1e-3
            ):
                raise InputError(
                    f"The brain mask {mask} (grid {mask_img.shape[:3]}) is not on the grid of "
                    f"its BOLD series {bold} (grid {img.shape[:3]}, or another affine). Use the "
                    "mask fMRIPrep wrote for the same space and resolution."
                )
            n_scans, header_tr, tr_source = int(img.shape[3]), _header_tr(img), "NIfTI header"
            grid = (tuple(img.shape[:3]), tuple(np.round(img.affine, 3).ravel()))
            if first_layout is not None and grid != first_layout[0]:
                raise InputError(
                    f"The BOLD series {bold} (grid {img.shape[:3]}) is not on the grid of "
                    f"{first_layout[1]} (grid {first_layout[0][0]}, or another affine). All runs "
                    f"must be in the same space and resolution: choose one with --space "
                    f"{space}:res-N, or re-run fMRIPrep with one --output-spaces."
                )
            first_layout = first_layout or (grid, bold.name)
        else:
            info = inspect_series(files_of[bold_file.path], kind)
            if first_layout is not None and info.layout != first_layout[0]:
                raise InputError(
                    f"The surface files of {where} do not have the vertices of "
                    f"{first_layout[1]} ({_describe_layout(info.layout)} vs "
                    f"{_describe_layout(first_layout[0])}). All runs must be on the same "
                    "surface mesh or CIFTI density; re-run fMRIPrep with one --output-spaces."
                )
            first_layout = first_layout or (info.layout, bold.name)
            n_scans, header_tr, tr_source = info.n_scans, info.header_tr, info.tr_source
        tr = _repetition_time(layout, bold, header_tr, tr_source)
        presentations = tuple(_presentations(events, stimuli_dir, ent, options, where, tr))
        check_audio_coverage(
            presentations,
            n_scans=n_scans,
            tr=tr,
            run_name=where,
            source=options.stimulus_map_file or events or "the stimulus map",
        )
        runs.append(
            RunInputs(
                subject=subject,
                task=task,
                session=ent.get("session"),
                run=str(ent["run"]) if ent.get("run") is not None else None,
                bold=bold,
                mask=mask,
                confounds=confounds,
                events=events,
                tr=tr,
                n_scans=n_scans,
                presentations=presentations,
                bold_files=files_of.get(bold_file.path, ()) if kind == "surface" else (),
                den=ent.get("den"),
            )
        )
    return sorted(runs, key=lambda r: (r.session or "", r.run or ""))
