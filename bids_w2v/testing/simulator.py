"""Generate a small naturalistic-listening BIDS dataset with simulated fMRIPrep derivatives.

Planted voxels follow one known layer's HRF-convolved activations (a random linear read-out
of that layer, the encoding model's own hypothesis: by default a random mix of the layer's
5 leading principal axes, as a voxel tuned to its dominant dimensions; ``n_components=None``
reads out every feature) plus white noise (``snr`` is the signal's standard deviation
relative to the noise's); every voxel also carries
motion- and drift-driven artefacts that the fMRIPrep confounds explain. The ground truth is
written to ``code/planted_voxels.tsv``. Used by ``make demo`` and by the recovery tests.

``surfaces`` adds fMRIPrep's surface outputs of the same data: GIfTI pairs
(``*_hemi-L_space-fsaverage5_bold.func.gii``, a few constant zero "medial wall" vertices per
hemisphere) and a CIFTI dense time series (``*_space-fsLR_den-91k_bold.dtseries.nii``, two
cortical surfaces and a small subcortical structure). Feature ``f`` (the ravelled voxel index)
is grayordinate ``f`` of the CIFTI; the first 80 % of features are the cortical vertices of
both GIfTIs (left half, then right), the rest only exist in the volume and the CIFTI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import soundfile as sf
from nibabel import cifti2

from bids_w2v.features import (
    available_layers,
    extract_features,
    load_model,
    load_or_extract,
    parse_layers,
)
from bids_w2v.features.design import build_run_design
from bids_w2v.inputs.audio import load_audio
from bids_w2v.inputs.events import Presentation

SPACE = "MNI152NLin2009cAsym"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
MEDIAL_WALL = 3  # constant vertices at the start of each simulated hemisphere


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate."""

    model: str = "facebook/wav2vec2-base"
    random_init: bool = True
    seed: int = 0
    subjects: tuple[str, ...] = ("01", "02")
    task: str = "listen"
    tr: float = 1.0
    shape: tuple[int, int, int] = (8, 8, 6)
    planted: tuple[tuple[str, int], ...] = (
        ("conv2", 12),
        ("transformer0", 12),
        ("transformer5", 12),
        ("transformer11", 12),
    )
    snr: float = 1.5
    artefact_scale: float = 2.0
    clip_seconds: float | None = None
    n_runs: int = 4
    n_components: int | None = 5
    window_s: float | None = 10.0
    stride_s: float = 5.0
    surfaces: tuple[str, ...] = ()  # e.g. ("fsaverage5", "fsLR"): GIfTI / CIFTI outputs too


def shipped_speech(name: str) -> Path:
    """Path of a real speech recording shipped with bids-w2v (``barber.wav``, ...)."""
    return Path(str(resources.files("bids_w2v") / "data" / "speech" / name))


def _write_stimuli(root: Path, clip_seconds: float | None, n_runs: int) -> list[list[Path]]:
    """Write the stimuli of each run into ``stimuli/``.

    Run 1 plays the shipped recordings as they are (odd formats on purpose: stereo 44.1 kHz,
    8-bit 11 kHz), run 2 their time reversals, runs 3 and 4 tape-speed variants (the same
    samples declared at 0.8x and 1.25x the rate: slower and lower, faster and higher).
    """
    stim_dir = root / "stimuli"
    stim_dir.mkdir(parents=True, exist_ok=True)
    variants = [
        ("", False, 1.0),
        ("_reversed", True, 1.0),
        ("_slow", False, 0.8),
        ("_fast", True, 1.25),
    ][:n_runs]
    runs: list[list[Path]] = [[] for _ in variants]
    for name in ("barber.wav", "obama_speech.wav"):
        data, sr = sf.read(shipped_speech(name), always_2d=True)
        if clip_seconds is not None:
            data = data[: int(clip_seconds * sr)]
        for run, (suffix, reverse, speed) in enumerate(variants):
            path = stim_dir / name.replace(".wav", f"{suffix}.wav")
            if not suffix and clip_seconds is None:
                path.write_bytes(shipped_speech(name).read_bytes())
            else:
                sf.write(
                    path, data[::-1] if reverse else data, int(round(sr * speed)), subtype="PCM_16"
                )
            runs[run].append(path)
    return runs


def _confounds(n_scans: int, tr: float, rng: np.random.Generator) -> pd.DataFrame:
    """fMRIPrep-like confounds: AR(1) motion, WM/CSF, FD, cosine drifts."""
    table = {}
    motion = np.zeros((n_scans, 6))
    innovations = rng.standard_normal((n_scans, 6)) * 0.05
    for t in range(n_scans):
        motion[t] = (0.5 * motion[t - 1] if t else 0.0) + innovations[t]
    for i, col in enumerate(MOTION):
        table[col] = motion[:, i]
    for col in ("white_matter", "csf", "global_signal"):
        table[col] = np.convolve(rng.standard_normal(n_scans), np.ones(5) / 5, mode="same")
    for col in list(table):
        deriv = np.r_[np.nan, np.diff(table[col])]
        table[f"{col}_derivative1"] = deriv
        table[f"{col}_power2"] = table[col] ** 2
        table[f"{col}_derivative1_power2"] = deriv**2
    fd = np.abs(np.diff(motion[:, :3], axis=0)).sum(1) + 50 * np.abs(
        np.diff(motion[:, 3:], axis=0)
    ).sum(1)
    table["framewise_displacement"] = np.r_[np.nan, fd]
    n_cos = int(np.floor(2 * n_scans * tr / 128.0))
    t = np.arange(n_scans)
    for k in range(1, n_cos + 1):
        table[f"cosine{k - 1:02d}"] = np.sqrt(2.0 / n_scans) * np.cos(
            np.pi * (2 * t + 1) * k / (2 * n_scans)
        )
    return pd.DataFrame(table)


def _write_json(path: Path, data: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)


def surface_layout(n_features: int) -> tuple[int, int, int]:
    """Cortical vertices per hemisphere (left, right) and subcortical voxels of the simulation."""
    n_cortex = int(round(0.8 * n_features))
    n_left = n_cortex // 2
    return n_left, n_cortex - n_left, n_features - n_cortex


def _brain_models(n_features: int) -> cifti2.BrainModelAxis:
    """A small CIFTI brain-model axis: left and right cortex, and a few thalamus voxels."""
    n_left, n_right, n_sub = surface_layout(n_features)
    left = cifti2.BrainModelAxis.from_surface(
        np.arange(n_left) + MEDIAL_WALL, n_left + MEDIAL_WALL, "CortexLeft"
    )
    right = cifti2.BrainModelAxis.from_surface(
        np.arange(n_right) + MEDIAL_WALL, n_right + MEDIAL_WALL, "CortexRight"
    )
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask.reshape(-1)[:n_sub] = True
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    sub = cifti2.BrainModelAxis.from_mask(mask, "ThalamusLeft", affine=affine)
    return left + right + sub


def _write_surfaces(
    dfunc: Path, stem: str, data: np.ndarray, spec: SimulationSpec, space: str
) -> None:
    """Write one run's (n_scans, n_features) data as fMRIPrep's GIfTI pair or CIFTI file."""
    sidecar = {"RepetitionTime": spec.tr, "TaskName": spec.task}
    if space in ("fsLR",):
        n_scans = data.shape[0]
        series = cifti2.SeriesAxis(start=0.0, step=spec.tr, size=n_scans, unit="SECOND")
        img = cifti2.Cifti2Image(
            data.astype(np.float32), header=(series, _brain_models(data.shape[1]))
        )
        img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
        name = f"{stem}_space-{space}_den-91k_bold"
        img.to_filename(dfunc / f"{name}.dtseries.nii")
        _write_json(dfunc / f"{name}.json", sidecar)
        return
    n_left, n_right, _ = surface_layout(data.shape[1])
    parts = {"L": data[:, :n_left], "R": data[:, n_left : n_left + n_right]}
    for hemi, values in parts.items():
        full = np.zeros((values.shape[0], values.shape[1] + MEDIAL_WALL), dtype=np.float32)
        full[:, MEDIAL_WALL:] = values
        darrays = [
            nb.gifti.GiftiDataArray(row, intent="NIFTI_INTENT_TIME_SERIES", datatype="float32")
            for row in full
        ]
        meta = {"AnatomicalStructurePrimary": "CortexLeft" if hemi == "L" else "CortexRight"}
        name = f"{stem}_hemi-{hemi}_space-{space}_bold"
        nb.save(
            nb.GiftiImage(darrays=darrays, meta=nb.gifti.GiftiMetaData(meta)),
            dfunc / f"{name}.func.gii",
        )
        _write_json(dfunc / f"{name}.json", sidecar)


def simulate_dataset(
    root: Path, spec: SimulationSpec = SimulationSpec(), *, cache_dir: Path | None = None
) -> pd.DataFrame:
    """Write a BIDS dataset with fMRIPrep-like derivatives and planted layer signals.

    Parameters
    ----------
    root : Path
        Folder to create (the raw dataset; derivatives under ``derivatives/fmriprep``).
    spec : SimulationSpec
        What to simulate.
    cache_dir : Path, optional
        Feature cache shared with the pipeline (the planted layers' features are then
        extracted once); by default features are extracted without caching.

    Returns
    -------
    DataFrame
        The planted voxels: ``i, j, k, layer``; with ``surfaces`` also ``grayordinate``
        (CIFTI index), ``hemi`` and ``vertex`` (GIfTI; empty and -1 off the cortex). Also in
        ``code/planted_voxels.tsv``.
    """
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    fmriprep = root / "derivatives" / "fmriprep"
    _write_json(
        root / "dataset_description.json",
        {
            "Name": "bids-w2v simulated listening dataset",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
        },
    )
    _write_json(
        fmriprep / "dataset_description.json",
        {
            "Name": "fMRIPrep-like simulated derivatives",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.1.0"}],
        },
    )
    _write_json(
        root / f"task-{spec.task}_bold.json", {"TaskName": spec.task, "RepetitionTime": spec.tr}
    )
    (root / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in spec.subjects)
    )
    (root / "README").write_text("Simulated by bids-w2v (bids_w2v.testing.simulator).\n")
    run_stimuli = _write_stimuli(root, spec.clip_seconds, spec.n_runs)

    loaded = load_model(spec.model, random_init=spec.random_init, seed=spec.seed)
    available = available_layers(loaded.model)
    planted = parse_layers([name for name, _ in spec.planted], available)
    # with a shared cache, extract every layer: the pipeline's default request hits the cache
    layers = available if cache_dir is not None else planted
    features = {}
    for run in run_stimuli:
        for path in run:
            if cache_dir is not None:
                features[path] = load_or_extract(
                    cache_dir,
                    path,
                    loaded,
                    layers=layers,
                    window_s=spec.window_s,
                    stride_s=spec.stride_s,
                )
            else:
                audio = load_audio(path, loaded.sampling_rate)
                features[path] = extract_features(
                    loaded, audio, layers=layers, window_s=spec.window_s, stride_s=spec.stride_s
                )

    # timings: 2 s of silence, the stimuli back to back with 2 s gaps, 12 s of silence
    run_events, designs, n_scans_runs = [], [], []
    for run in run_stimuli:
        onset, presentations = 2.0, []
        for path in run:
            presentations.append(Presentation(onset=onset, stim_file=path))
            onset += sf.info(path).duration + 2.0
        n_scans = int(np.ceil((onset + 10.0) / spec.tr))
        run_events.append(presentations)
        n_scans_runs.append(n_scans)
        designs.append(
            build_run_design(presentations, features, layers, n_scans=n_scans, tr=spec.tr)
        )

    shape = spec.shape
    n_vox = int(np.prod(shape))
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-16.0, -16.0, -12.0]
    order = rng.permutation(n_vox)
    planted_layer = np.full(n_vox, "", dtype=object)
    weights = {}
    start = 0
    for name, count in spec.planted:
        idx = order[start : start + count]
        planted_layer[idx] = name
        stacked = np.concatenate([d[name] for d in designs])
        mu, sd = stacked.mean(0), np.where(stacked.std(0) > 0, stacked.std(0), 1.0)
        if spec.n_components:  # a random mix of the layer's leading principal axes
            axes = np.linalg.svd((stacked - mu) / sd, full_matrices=False)[2][: spec.n_components]
            w = axes.T @ rng.standard_normal((axes.shape[0], count))
        else:  # a dense random read-out of every feature
            w = rng.standard_normal((stacked.shape[1], count))
        weights[name] = (mu, sd, w)
        start += count
    ijk = np.array(np.unravel_index(np.arange(n_vox), shape)).T
    truth = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2], "layer": planted_layer})
    if spec.surfaces:
        n_left, n_right, _ = surface_layout(n_vox)
        feature = np.arange(n_vox)
        truth["grayordinate"] = feature
        truth["hemi"] = np.where(
            feature < n_left, "L", np.where(feature < n_left + n_right, "R", "")
        )
        truth["vertex"] = np.where(
            feature < n_left,
            feature + MEDIAL_WALL,
            np.where(feature < n_left + n_right, feature - n_left + MEDIAL_WALL, -1),
        )
    truth = truth[truth.layer != ""].reset_index(drop=True)
    (root / "code").mkdir(exist_ok=True)
    truth.to_csv(root / "code" / "planted_voxels.tsv", sep="\t", index=False)

    mask = np.ones(shape, dtype=np.uint8)
    for sub in spec.subjects:
        for r, (presentations, n_scans, design) in enumerate(
            zip(run_events, n_scans_runs, designs, strict=True), start=1
        ):
            stem = f"sub-{sub}_task-{spec.task}_run-{r}"
            signal = np.zeros((n_scans, n_vox))
            for name, _ in spec.planted:
                idx = np.flatnonzero(planted_layer == name)
                mu, sd, w = weights[name]
                signal[:, idx] = spec.snr * _zscore((design[name] - mu) / sd @ w)
            noise = rng.standard_normal((n_scans, n_vox))
            conf = _confounds(n_scans, spec.tr, rng)
            artefact_regs = np.column_stack(
                [conf[c] for c in MOTION + ["white_matter", "csf"]]
                + [conf[c] for c in conf.columns if c.startswith("cosine")]
            )
            loadings = rng.standard_normal((artefact_regs.shape[1], n_vox))
            artefact = (
                _zscore(artefact_regs)
                @ loadings
                * spec.artefact_scale
                / np.sqrt(artefact_regs.shape[1])
            )
            bold = 1000.0 + 10.0 * (signal + noise + artefact)
            data = bold.T.reshape(shape + (n_scans,)).astype(np.float32)
            img = nb.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = spec.tr
            func = root / f"sub-{sub}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            img.to_filename(func / f"{stem}_bold.nii.gz")
            pd.DataFrame(
                {
                    "onset": [p.onset for p in presentations],
                    "duration": [sf.info(p.stim_file).duration for p in presentations],
                    "trial_type": ["speech"] * len(presentations),
                    "stim_file": [p.stim_file.name for p in presentations],
                }
            ).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a")
            dfunc = fmriprep / f"sub-{sub}" / "func"
            dfunc.mkdir(parents=True, exist_ok=True)
            prefix = f"{stem}_space-{SPACE}"
            img.to_filename(dfunc / f"{prefix}_desc-preproc_bold.nii.gz")
            _write_json(
                dfunc / f"{prefix}_desc-preproc_bold.json",
                {"RepetitionTime": spec.tr, "SkullStripped": False, "TaskName": spec.task},
            )
            nb.Nifti1Image(mask, affine).to_filename(dfunc / f"{prefix}_desc-brain_mask.nii.gz")
            for surface in spec.surfaces:
                _write_surfaces(dfunc, stem, bold.astype(np.float32), spec, surface)
            conf.to_csv(
                dfunc / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a"
            )
            _write_json(
                dfunc / f"{stem}_desc-confounds_timeseries.json",
                {c: {"Description": c} for c in conf.columns},
            )
    return truth
