"""Find a participant's runs with pybids: preprocessed BOLD, mask, confounds, events, stimuli.

All checks that can be made before any computation are made here, so that a bad dataset fails
in seconds with a message naming the file, what is wrong, and how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
from bids import BIDSLayout
from bids.layout import Query

from bids_w2v.errors import InputError
from bids_w2v.io.events import Presentation, read_presentations


@dataclass(frozen=True)
class RunInputs:
    """Everything needed to model one fMRI run."""

    subject: str
    task: str
    session: str | None
    run: str | None
    bold: Path
    mask: Path
    confounds: Path | None
    events: Path
    tr: float
    n_scans: int
    presentations: tuple[Presentation, ...]

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
    if not (fmriprep_dir / "dataset_description.json").is_file():
        raise InputError(
            f"{fmriprep_dir} has no dataset_description.json, so it is not a BIDS derivatives "
            "folder. Point -d fmriprep=PATH at the folder fMRIPrep wrote (it holds "
            "dataset_description.json and the sub-* folders)."
        )
    try:
        return BIDSLayout(str(bids_dir), validate=validate, derivatives=[str(fmriprep_dir)])
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


def _repetition_time(layout: BIDSLayout, bold: Path, img: nb.Nifti1Image) -> float:
    """The run's TR: the JSON sidecar's RepetitionTime, checked against the NIfTI header."""
    sidecar = layout.get_metadata(str(bold)).get("RepetitionTime")
    header = _header_tr(img)
    if sidecar is None and header is None:
        raise InputError(
            f"No repetition time for {bold}: neither its JSON sidecar (RepetitionTime) nor "
            'the NIfTI header gives one. Add "RepetitionTime" (seconds) to the sidecar.'
        )
    if sidecar is not None and (not isinstance(sidecar, (int, float)) or sidecar <= 0):
        raise InputError(
            f"The RepetitionTime of {bold} in its JSON sidecar is {sidecar!r}, not a positive "
            "number of seconds. Fix the sidecar."
        )
    if sidecar is not None and header is not None and abs(header - sidecar) > 1e-3:
        raise InputError(
            f"The repetition time of {bold} is {sidecar} s in its JSON sidecar but {header:g} s "
            "in the NIfTI header. One of them is wrong, and the design would be misaligned "
            "with the scans: correct the sidecar's RepetitionTime or the header's pixdim[4] "
            "(nibabel: img.header.set_zooms(...)) so that they agree."
        )
    return float(sidecar if sidecar is not None else header)


def collect_runs(
    layout: BIDSLayout, subject: str, task: str, space: str, res: str | None
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

    Returns
    -------
    list of RunInputs
        Sorted by session and run.
    """
    query = {"subject": subject, "task": task, "space": space}
    if res is not None:
        query["res"] = res
    bolds = layout.get(
        scope="derivatives", suffix="bold", desc="preproc", extension=[".nii.gz", ".nii"], **query
    )
    if not bolds:
        spaces = sorted(
            layout.get_spaces(scope="derivatives", subject=subject, task=task, suffix="bold")
        )
        raise InputError(
            f"No preprocessed BOLD (desc-preproc_bold) for sub-{subject}, task '{task}' in space "
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
        mask = _one(
            layout.get(
                scope="derivatives",
                suffix="mask",
                desc="brain",
                extension=[".nii.gz", ".nii"],
                space=space,
                **({"res": res} if res else {}),
                **sel,
            ),
            "brain masks",
            where,
        )
        if mask is None:
            raise InputError(
                f"No brain mask (desc-brain_mask) next to {bold}. fMRIPrep writes one per run "
                "and space; re-run fMRIPrep or restore the file."
            )
        confounds = _one(
            layout.get(
                scope="derivatives", suffix="timeseries", desc="confounds", extension=".tsv", **sel
            ),
            "confounds files",
            where,
        )
        events = _one(
            layout.get(scope="raw", suffix="events", extension=".tsv", **sel),
            "events files",
            where,
        )
        if events is None:
            raise InputError(
                f"No events.tsv in the raw dataset for {where}. bids-w2v reads the audio that "
                "was played from the events file's stim_file column: add "
                f"{bold.name.split('_space-')[0]}_events.tsv with onset, duration and stim_file."
            )
        img = nb.load(str(bold))
        if img.ndim != 4:
            raise InputError(f"{bold} is not a 4-D BOLD series (shape {img.shape}).")
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
                tr=_repetition_time(layout, bold, img),
                n_scans=int(img.shape[3]),
                presentations=tuple(read_presentations(events, stimuli_dir)),
            )
        )
    return sorted(runs, key=lambda r: (r.session or "", r.run or ""))
