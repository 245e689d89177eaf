"""Index a dataset with pybids and choose what to analyse: subjects, space, and the tasks
(:func:`plan_tasks`, re-exported from :mod:`bids_w2v.inputs.tasks`).

The runs themselves (BOLD, mask, confounds, events) are collected by
:mod:`bids_w2v.inputs.runs` (:func:`collect_runs`, re-exported here). All checks that can be
made before any computation are made there and here, so that a bad dataset fails in seconds
with a message naming the file, what is wrong, and how to fix it.
"""

from __future__ import annotations

import json
from pathlib import Path

from bids import BIDSLayout

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import not_fetched
from bids_w2v.inputs.preflight import check_inputs
from bids_w2v.inputs.runs import RunInputs, collect_participants, collect_runs
from bids_w2v.inputs.tasks import TaskPlan, plan_tasks

__all__ = [
    "RunInputs",
    "TaskPlan",
    "check_dataset",
    "collect_participants",
    "collect_runs",
    "load_layout",
    "parse_space",
    "plan_tasks",
    "select_subjects",
    "strip_prefix",
]


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
    check_inputs([desc] if not_fetched(desc) else [], what="file of the dataset", fix="")
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
    check_inputs(
        [p for p in [fmriprep_dir / "dataset_description.json"] if not_fetched(p)],
        what="file of the derivatives",
        fix="",
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
