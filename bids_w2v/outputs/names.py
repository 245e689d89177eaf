"""BIDS-derivative names and metadata of bids-w2v outputs.

Names are built with pybids' :func:`bids.layout.writing.build_path` from the patterns below
(the BIDS Stats Models convention FitLins uses: ``stat-<statistic>_statmap``). The model and the
layer go in ``desc-``: ``desc-wav2vec2baseRandomTransformer6``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from bids.layout.writing import build_path

from bids_w2v import __version__
from bids_w2v.outputs.atomic import write_json, write_text

_EXTENSIONS = "{extension<.nii.gz|.func.gii|.dscalar.nii|.json>|.nii.gz}"
PARTICIPANT_PATTERN = (
    "sub-{subject}/func/sub-{subject}_task-{task}[_hemi-{hemi}][_space-{space}][_res-{res}]"
    "[_den-{den}][_desc-{desc}]_stat-{stat}_{suffix<statmap>|statmap}" + _EXTENSIONS
)
GROUP_PATTERN = (
    "task-{task}[_hemi-{hemi}][_space-{space}][_res-{res}][_den-{den}]"
    "[_desc-{desc}]_stat-{stat}_{suffix<statmap>|statmap}" + _EXTENSIONS
)
# the statmap suffix is not in the BIDS specification (it is BIDS Stats Models'); as fMRIPrep
# does for its reports, ignore the HTML
BIDSIGNORE = (
    "*_statmap.nii.gz\n*_statmap.func.gii\n*_statmap.dscalar.nii\n*_statmap.json\n*.html\n"
    "*_summary.tsv\n*_summary.json\n"  # group-level tables (bids_w2v.group.collection)
)

README = """Brain scores of self-supervised speech models, computed by bids-w2v.

sub-<label>/func/*_stat-r_statmap.nii.gz: per layer (desc-<model><Layer>), the Pearson r between
held-out BOLD and the prediction of a cross-validated ridge regression from that layer's
HRF-convolved activations. *_stat-peaklayer_statmap.nii.gz: the layer of highest score per
voxel. task-*_statmap.nii.gz at the top level: group-level maps. Every map has a JSON sidecar
with the settings that produced it; logs/ holds each run's configuration.

Method: Millet, Caucheteux et al. (2022), Toward a realistic model of speech processing in the
brain with self-supervised learning, NeurIPS.
"""


def layer_desc(model_label: str, layer: str | None = None) -> str:
    """Build the ``desc-`` label for a model (and optionally one of its layers).

    Parameters
    ----------
    model_label : str
        Alphanumeric model label (e.g. ``wav2vec2baseRandom``).
    layer : str or None
        Layer name such as ``transformer6``.

    Returns
    -------
    str
        For example ``wav2vec2baseRandomTransformer6``.
    """
    label = re.sub(r"[^A-Za-z0-9]", "", model_label)
    if layer is None:
        return label
    return label + layer[:1].upper() + layer[1:]


#: longest joined task label; longer sets get a short label naming their count and a hash
MAX_TASK_LABEL = 48


def task_label(tasks: Sequence[str]) -> str:
    """The ``task-`` label of maps fitted on several tasks (one task: its own label).

    The tasks joined in their order, each after the first capitalised (``pieman`` and
    ``tunnel``: ``piemanTunnel``), a valid BIDS label that names every task; a set whose
    joined label would be longer than :data:`MAX_TASK_LABEL` characters (Narratives' 16
    stories at the group level) is named ``<N>tasks<hash>`` (``16tasks1a2b3c4d``), the hash
    of the joined labels. The sidecars list the tasks (``Tasks``) either way.

    Parameters
    ----------
    tasks : sequence of str
        Task labels, in the order their runs were concatenated.

    Returns
    -------
    str
    """
    tasks = list(dict.fromkeys(tasks))
    if len(tasks) == 1:
        return tasks[0]
    joined = tasks[0] + "".join(t[:1].upper() + t[1:] for t in tasks[1:])
    if len(joined) <= MAX_TASK_LABEL:
        return joined
    digest = hashlib.sha1("\n".join(tasks).encode()).hexdigest()[:8]
    return f"{len(tasks)}tasks{digest}"


def statmap_path(
    output_dir: Path,
    *,
    task: str,
    stat: str,
    desc: str,
    space: str | None,
    res: str | None = None,
    subject: str | None = None,
    extension: str = ".nii.gz",
    hemi: str | None = None,
    den: str | None = None,
) -> Path:
    """Path of a participant-level (``subject`` given) or group-level statistical map.

    Parameters
    ----------
    output_dir : Path
        Root of the bids-w2v derivative dataset.
    task, stat, desc, space, res, subject : str
        BIDS entities (``subject`` without ``sub-``; ``None`` for the group level).
    extension : str
        ``.nii.gz``, ``.func.gii``, ``.dscalar.nii`` or ``.json``.
    hemi, den : str, optional
        Hemisphere (``L``/``R``, GIfTI maps) and CIFTI density (``91k``).

    Returns
    -------
    Path
        Absolute path inside ``output_dir``.
    """
    entities = {
        "task": task,
        "stat": stat,
        "desc": desc,
        "space": space,
        "res": res,
        "hemi": hemi,
        "den": den,
        "suffix": "statmap",
        "extension": extension,
    }
    if subject is not None:
        entities["subject"] = subject
    entities = {k: v for k, v in entities.items() if v is not None}
    pattern = PARTICIPANT_PATTERN if subject is not None else GROUP_PATTERN
    rel = build_path(entities, [pattern], strict=True)
    if rel is None:  # pragma: no cover - the patterns above always match these entities
        raise ValueError(f"cannot name an output from {entities}")
    return Path(output_dir) / rel


def write_dataset_description(output_dir: Path, sources: list[str]) -> Path:
    """Write ``dataset_description.json`` and ``.bidsignore`` (idempotent, atomic).

    Parameters
    ----------
    output_dir : Path
        Root of the bids-w2v derivative dataset.
    sources : list of str
        Source datasets (``SourceDatasets``), e.g. the raw BIDS and fMRIPrep folders.

    Returns
    -------
    Path
        The ``dataset_description.json`` path.
    """
    output_dir = Path(output_dir)
    path = output_dir / "dataset_description.json"
    description = {
        "Name": "bids-w2v brain scores",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "bids-w2v",
                "Version": __version__,
                "Description": "Brain scores of self-supervised speech models "
                "(Millet, Caucheteux et al., NeurIPS 2022).",
            }
        ],
        "SourceDatasets": [{"URL": Path(s).absolute().as_uri()} for s in sources],
    }
    if path.exists():
        try:
            if json.loads(path.read_text()) == description:
                return path
        except (OSError, ValueError):
            pass
    write_json(path, description)
    readme = output_dir / "README"
    if not readme.exists():
        write_text(readme, README)
    ignore = output_dir / ".bidsignore"
    if not ignore.exists() or ignore.read_text() != BIDSIGNORE:
        write_text(ignore, BIDSIGNORE)
    return path
