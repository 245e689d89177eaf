"""Cross-subject noise ceiling: each participant's cleaned BOLD predicted from the mean of the
others who heard the same stimuli, by the authors' method (``paper``) or voxel by voxel on the
encoding's folds (``voxelwise``); see :mod:`bids_w2v.group.ceiling`."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bids_w2v.config import CleaningSettings, EncodingSettings, InputSettings
from bids_w2v.errors import InputError
from bids_w2v.group.collection import (
    entity,
    find_group_map,
    load_grid,
    participant_tasks,
)
from bids_w2v.group.maps import GroupWriter
from bids_w2v.group.statistics import (
    mean_across_subjects,
)
from bids_w2v.outputs.names import statmap_path


def _run_key(run) -> tuple:
    """Runs with the same key presented the same stimuli at the same times."""
    return (run.task,) + tuple(
        (str(p.stim_file), round(float(p.onset), 3)) for p in run.presentations
    )


def _run_keys(runs: Sequence) -> list[tuple]:
    """:func:`_run_key` of each run plus its repetition number within the participant.

    A story heard twice (Narratives' pieman runs 1 and 2) gives two keys: the k-th hearing of
    one participant is paired with the k-th hearing of the others, never with itself.
    """
    seen: dict[tuple, int] = defaultdict(int)
    keys = []
    for run in runs:
        key = _run_key(run)
        keys.append(key + (seen[key],))
        seen[key] += 1
    return keys


def _map_space(runs: Sequence, space: str):
    """The space the noise ceiling is computed in, made as the participant level makes it: run
    masks intersected (volumes), nilearn's EPI mask (volumes without masks), or the vertices
    varying in every run (surfaces)."""
    from bids_w2v.spaces import space_for

    return space_for(space).common_of_runs(runs)


def _on_grid(values: np.ndarray, space) -> np.ndarray:
    """In-space values placed on the full map (NaN elsewhere): volume, L+R vertices or
    grayordinates."""
    return space.full(values).astype(np.float64)


def write_noise_ceiling(
    found: Mapping[str, Mapping[str, Sequence[tuple[str, Path, dict]]]],
    *,
    bids_dir: Path,
    fmriprep_dir: Path,
    output_dir: Path,
    scratch_dir: Path,
    task: str,
    space: str,
    res: str | None,
    inputs: InputSettings,
    cleaning: CleaningSettings,
    encoding: EncodingSettings,
    method: str = "paper",
) -> tuple[list[Path], list[str]]:
    """Noise ceiling of every participant who has a partner, and its group mean.

    Each participant's cleaned BOLD (same cleaning as the participant level, from its
    recorded configuration: confounds strategy, dummy and trimmed scans, high-pass) is predicted
    from the mean of the other participants' cleaned BOLD for the runs they share (same
    stimuli at the same onsets), by the authors' method (``method="paper"``,
    :func:`bids_w2v.group.ceiling.paper_ceiling`) or voxel by voxel on the encoding's outer
    folds (``method="voxelwise"``, :func:`bids_w2v.group.ceiling.crossval_ceiling`). Scans are
    those kept in every participant of a run (non-steady-state volumes dropped). Volumes, GIfTI
    surfaces and CIFTI grayordinates alike; the maps take the form of the participant maps.

    Parameters
    ----------
    found : mapping
        From :func:`collect_participant_maps` (participants and analysis settings).
    bids_dir, fmriprep_dir : Path
        Raw dataset and fMRIPrep (or other preprocessing) derivatives.
    output_dir : Path
        The bids-w2v derivative dataset.
    scratch_dir : Path
        Folder for cleaned BOLD while computing.
    task, space, res : str
        Entities of the group map (``task``: the label of every participant's tasks); each
        participant's map is named with the task label of its brain-score maps.
    inputs, cleaning, encoding : InputSettings, CleaningSettings, EncodingSettings
        How the participant level found and cleaned the runs, and its outer folds
        (:func:`bids_w2v.outputs.record.recorded_config`).
    method : {"paper", "voxelwise"}
        Noise-ceiling method (:mod:`bids_w2v.group.ceiling`).

    Returns
    -------
    files : list of Path
        Per-participant ``sub-<label>/func/..._stat-noiseceiling_statmap.*`` and the group
        mean ``task-..._stat-noiseceiling_statmap.*`` (absent when no one has a partner).
    notes : list of str
        Warnings (participants skipped).
    """
    from bids_w2v.bold.cleaning import clean_bold
    from bids_w2v.bold.confounds import ScanTrim, read_trim_table, scan_trims
    from bids_w2v.encoding.folds import make_folds
    from bids_w2v.group.ceiling import CEILING_METHODS, crossval_ceiling, paper_ceiling

    if method not in CEILING_METHODS:
        raise InputError(
            f"Unknown noise-ceiling method {method!r}; use one of {', '.join(CEILING_METHODS)} "
            "(--noise-ceiling-method)."
        )
    from bids_w2v.inputs.filters import collect_options
    from bids_w2v.inputs.layout import collect_participants, load_layout

    metas = {s: m for layers in found.values() for maps in layers.values() for s, _, m in maps}
    first_map = next(iter(next(iter(found.values())).values()))[0][1]
    grid = load_grid(first_map)
    subjects = sorted(metas)
    own_tasks = participant_tasks(found)  # participants may have heard different stories
    labels = {  # the task label of each participant's own maps
        s: entity(p.name, "task") for layers in found.values() for maps in layers.values()
        for s, p, _ in maps
    }  # fmt: skip
    strategy = tuple(cleaning.confounds_strategy)
    trims = (
        read_trim_table(cleaning.trim_scans_file)
        if cleaning.trim_scans_file
        else ScanTrim(*cleaning.trim_scans)
    )
    options = collect_options(inputs, cleaning)
    by_run, n_folds, gap = encoding.cv == "runs", encoding.n_folds, encoding.gap
    notes: list[str] = []
    layout = load_layout(bids_dir, fmriprep_dir, validate=False)
    # each participant's runs of the tasks (stories) its maps were fitted on, one pre-flight
    runs = collect_participants(layout, subjects, own_tasks, space, res, options)
    members: dict[tuple, list[str]] = defaultdict(list)
    for s in subjects:
        for key in _run_keys(runs[s]):
            members[key].append(s)
    shared = {k: v for k, v in members.items() if len(v) >= 2}
    partnered = [s for s in subjects if any(s in v for v in shared.values())]
    for s in subjects:
        if s not in partnered:
            note = (
                f"noise ceiling: sub-{s} shares no run (same stimuli at the same onsets) "
                "with another participant; skipped."
            )
            warnings.warn(note, stacklevel=2)
            notes.append(note)
    if not partnered:
        return [], notes
    map_space = _map_space([r for s in partnered for r in runs[s]], space)
    scratch_dir = Path(scratch_dir)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    key_id = {key: i for i, key in enumerate(shared)}
    kept: dict[tuple[str, tuple], np.ndarray] = {}
    for s in partnered:  # pass 1: clean once, keep on disk
        trims_s = scan_trims(runs[s], trims)
        for run, trim, key in zip(runs[s], trims_s, _run_keys(runs[s]), strict=True):
            if key not in shared:
                continue
            data, keep = clean_bold(
                run.data_files,
                map_space,
                tr=run.tr,
                confounds_strategy=strategy,
                dummy_scans=cleaning.dummy_scans,
                trim=tuple(trim),
                high_pass=cleaning.high_pass,
            )
            np.save(scratch_dir / f"sub-{s}_run{key_id[key]}.npy", data)
            kept[(s, key)] = keep
    common_scans = {}
    for key, subs in shared.items():  # running sum of a run's participants, one in memory
        scans = kept[(subs[0], key)]
        for s in subs[1:]:
            scans = np.intersect1d(scans, kept[(s, key)])
        common_scans[key] = scans
        total = None
        for s in subs:
            rows = np.searchsorted(kept[(s, key)], scans)
            part = np.load(scratch_dir / f"sub-{s}_run{key_id[key]}.npy")[rows].astype(np.float64)
            total = part if total is None else total + part
        np.save(scratch_dir / f"sum_run{key_id[key]}.npy", total)  # one run's sum in memory
        del total, part
    out = GroupWriter(output_dir, grid, task=task, space=space, res=res)
    ceilings = []
    for s in partnered:  # pass 2: each participant against the mean of the others
        ys, xs, groups = [], [], []
        for r, key in enumerate(_run_keys(runs[s])):
            if key not in shared:
                continue
            rows = np.searchsorted(kept[(s, key)], common_scans[key])
            y = np.load(scratch_dir / f"sub-{s}_run{key_id[key]}.npy")[rows].astype(np.float64)
            ys.append(y)
            total = np.load(scratch_dir / f"sum_run{key_id[key]}.npy")
            xs.append((total - y) / (len(shared[key]) - 1))  # the others' mean
            groups += [r] * len(y)
        y, x = np.concatenate(ys), np.concatenate(xs)
        if method == "paper":
            ceiling = paper_ceiling(y, x)
            method_meta = _paper_sidecar(y.shape)
        else:
            use_runs = by_run and len(set(groups)) >= 2
            folds = make_folds(
                len(y), n_folds=n_folds, groups=groups if use_runs else None, gap=gap
            )
            ceiling = crossval_ceiling(y, x, folds)
            method_meta = _voxelwise_sidecar(use_runs, n_folds, gap)
        del x, y, ys, xs
        ceilings.append(ceiling)
        partners = sorted({p for k in shared for p in shared[k] if s in shared[k]} - {s})
        sidecar = {
            "Statistic": "noise_ceiling_pearson_r",
            **method_meta,
            "Partners": [f"sub-{p}" for p in partners],
            "NumberOfScans": len(groups),
            # the stories shared with others (the ceiling's runs), of those the maps were fitted on
            "Tasks": sorted({k[0] for k in _run_keys(runs[s]) if k in shared}),
            "ConfoundsStrategy": list(strategy),
        }
        full = _on_grid(ceiling, map_space)
        if full.shape != grid.shape:
            raise InputError(
                f"The BOLD of sub-{s} ({full.shape}) is not on the grid of the participant maps "
                f"such as {first_map} ({grid.shape}); run the group level with the --space of the "
                "participant level, on the outputs of one participant configuration."
            )
        out.map(full, sidecar, stat="noiseceiling", desc=None, subject=s, task=labels[s])
    group = _on_grid(mean_across_subjects(np.stack(ceilings)), map_space)
    out.map(
        group,
        {
            "Statistic": "mean_noise_ceiling_pearson_r",
            "Participants": partnered,
            "NumberOfSubjects": len(partnered),
            "Notes": notes,
            "NoiseCeilingMethod": method,
            "Description": "Mean over participants of their noise-ceiling maps.",
        },
        stat="noiseceiling",
        desc=None,
    )
    return out.written, notes


def _paper_sidecar(shape: tuple[int, int]) -> dict:
    from bids_w2v.group.ceiling import PAPER_ALPHAS, PAPER_COMPONENTS, PAPER_FOLDS

    return {
        "NoiseCeilingMethod": "paper",
        "Description": "Pearson r, over the whole series, between the participant's cleaned "
        "BOLD and its cross-validated prediction from the mean cleaned BOLD of the other "
        "participants who heard the same stimuli, by the method of the authors' code "
        "(Millet, Caucheteux et al. 2022; JAMJU/brain_and_models compute_noise_ceiling.py): "
        "PCA of both, multivariate ridge (alpha by leave-one-out) between the components, "
        "inverse PCA.",
        "PCAComponents": min(PAPER_COMPONENTS, *shape),
        "RidgeAlphas": list(PAPER_ALPHAS),
        "CrossValidation": {"Outer": f"{PAPER_FOLDS} contiguous unshuffled folds"},
    }


def _voxelwise_sidecar(use_runs: bool, n_folds: int, gap: int) -> dict:
    return {
        "NoiseCeilingMethod": "voxelwise",
        "Description": "Pearson r between the participant's held-out cleaned BOLD and its "
        "least-squares prediction from the same voxel of the mean cleaned BOLD of the other "
        "participants who heard the same stimuli, on the encoding's outer folds, averaged "
        "over folds (bids-w2v's voxelwise method; not the paper's, which is 'paper').",
        "CrossValidation": {
            "Outer": "leave one run out" if use_runs else f"{n_folds} contiguous unshuffled folds",
            "GapScans": gap,
        },
    }


def group_ceiling_path(output_dir: Path, task: str, space: str, res: str | None) -> Path:
    """Path of the group mean noise-ceiling map (its hemi-L file on surfaces).

    The map of any form (NIfTI, GIfTI, CIFTI) if written, else the NIfTI name.
    """
    found = find_group_map(
        output_dir, task=task, space=space, res=res, desc=None, stat="noiseceiling"
    )
    return found or statmap_path(
        output_dir, task=task, space=space, res=res, desc=None, stat="noiseceiling"
    )
