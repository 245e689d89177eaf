"""Generate a small naturalistic-listening BIDS dataset with simulated fMRIPrep derivatives.

The ground truth shares no code with the analysis (:mod:`bids_w2v.testing.truth`): each
planted voxel reads out one layer's activations, computed with transformers' own forward pass
(``output_hidden_states``; conv blocks by forward hooks written there), every model frame an
event convolved with nilearn's ``compute_regressor`` (Glover HRF) at the middle of each volume
(the preprocessed sidecars say ``SliceTimingCorrected: true`` and ``StartTime`` = TR / 2, as
fMRIPrep's slice-timing correction). The read-out of a voxel is a random mix of its layer's
``n_components`` leading principal axes (of the activations themselves; ``None``: every
feature), partly shared between participants (``shared_weights``) and partly their own. Noise
is AR(1) (``noise_ar``); ``snr`` is the planted signal's standard deviation relative to the
noise's, and the default gives held-out brain scores of about 0.1-0.3 as in real data. Every
voxel also carries artefacts of the true head motion, tissue signals and a slow drift, which
the fMRIPrep-like confounds explain only partly. The ground truth is written to
``code/planted_voxels.tsv``. Used by ``make demo`` and by the recovery tests.

``surfaces`` adds fMRIPrep's surface outputs of the same data: GIfTI pairs
(``*_hemi-L_space-fsaverage5_bold.func.gii``, a few constant zero "medial wall" vertices per
hemisphere) and a CIFTI dense time series (``*_space-fsLR_den-91k_bold.dtseries.nii``, two
cortical surfaces and a small subcortical structure). Feature ``f`` (the ravelled voxel index)
is grayordinate ``f`` of the CIFTI; the first 80 % of features are the cortical vertices of
both GIfTIs (left half, then right), the rest only exist in the volume and the CIFTI.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import fftconvolve

from bids_w2v.testing.sim_outputs import (
    MEDIAL_WALL,
    MOTION,
    confounds_and_artefacts,
    surface_layout,
    surface_truth,
    write_json,
    write_surfaces,
    zscore,
)
from bids_w2v.testing.truth import (
    ar1_noise,
    frame_rate,
    hrf_response,
    layer_activations,
    load_truth_model,
    mid_scan_times,
    read_mono_16k,
)

__all__ = [
    "MEDIAL_WALL",
    "MOTION",
    "SPACE",
    "SimulationSpec",
    "shipped_speech",
    "simulate_dataset",
    "surface_layout",
]

SPACE = "MNI152NLin2009cAsym"
_zscore = zscore  # the name replicas and older callers import
_write_json = write_json


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
    snr: float = 0.5  # planted signal SD / noise SD
    artefact_scale: float = 1.0
    clip_seconds: float | None = None
    n_runs: int = 4
    n_components: int | None = 5
    window_s: float | None = 10.0
    stride_s: float = 5.0
    surfaces: tuple[str, ...] = ()  # e.g. ("fsaverage5", "fsLR"): GIfTI / CIFTI outputs too
    noise_ar: float = 0.4  # AR(1) coefficient of the noise at this TR
    shared_weights: float = 0.7  # share of a voxel's read-out common to all participants


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


def _write_descriptions(root: Path, spec: SimulationSpec) -> None:
    """dataset_description.json of the raw dataset and its fMRIPrep derivatives, README..."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": "bids-w2v simulated listening dataset",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
        },
    )
    write_json(
        root / "derivatives" / "fmriprep" / "dataset_description.json",
        {
            "Name": "fMRIPrep-like simulated derivatives",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.1.0"}],
        },
    )
    write_json(
        root / f"task-{spec.task}_bold.json", {"TaskName": spec.task, "RepetitionTime": spec.tr}
    )
    (root / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in spec.subjects)
    )
    (root / "README").write_text("Simulated by bids-w2v (bids_w2v.testing.simulator).\n")


def _schedule(run: list[Path], tr: float) -> tuple[pd.DataFrame, int]:
    """Events of a run (2 s of silence, the stimuli with 2 s gaps, 12 s of silence), scans."""
    onset, rows = 2.0, []
    for path in run:
        duration = sf.info(path).duration
        rows.append({"onset": onset, "duration": duration, "trial_type": "speech",
                     "stim_file": path.name})  # fmt: skip
        onset += duration + 2.0
    return pd.DataFrame(rows), int(np.ceil((onset + 10.0) / tr))


def _activations(spec: SimulationSpec, paths: list[Path]) -> tuple[dict, float]:
    """Standardised activations of the planted layers: {layer: {path: (frames, dim)}}."""
    model = load_truth_model(spec.model, random_init=spec.random_init, seed=spec.seed)
    names = [f"conv{i}" for i in range(len(model.feature_extractor.conv_layers))] + [
        f"transformer{i}" for i in range(len(model.encoder.layers))
    ]
    layers = list(dict.fromkeys(name for name, _ in spec.planted))
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise ValueError(f"planted layers {unknown} not in the model's layers {names}")
    acts = {layer: {} for layer in layers}
    for path in paths:
        audio = read_mono_16k(path)
        values = layer_activations(
            model, audio, layers, window_s=spec.window_s, stride_s=spec.stride_s
        )
        for layer in layers:
            acts[layer][path] = values[layer]
    for per_path in acts.values():
        stacked = np.concatenate(list(per_path.values()))
        mu, sd = stacked.mean(0), stacked.std(0)
        sd = np.where(sd > 1e-6 * max(sd.max(), 1e-12), sd, 1.0)
        for path in per_path:
            per_path[path] = (per_path[path] - mu) / sd
    return acts, frame_rate(model)


def _readout_basis(per_path: dict, n_components: int | None, rate: float) -> np.ndarray:
    """(dim, k) directions a voxel mixes: every feature, or the layer's leading SLOW axes.

    The slow axes are the principal axes of the activations smoothed by the haemodynamics
    (each feature convolved with nilearn's Glover HRF at the frame rate, taken every 0.5 s):
    the dimensions along which the layer varies most at the time scale the BOLD can follow.
    """
    from nilearn.glm.first_level import glover_hrf

    stacked = np.concatenate(list(per_path.values()))
    if not n_components:
        return np.eye(stacked.shape[1])
    kernel = glover_hrf(1.0 / rate, oversampling=1, time_length=32.0)
    step = max(1, int(round(rate / 2)))
    slow = np.concatenate(
        [fftconvolve(values, kernel[:, None], axes=0)[::step] for values in per_path.values()]
    )
    slow = slow - slow.mean(0)
    return np.linalg.svd(slow, full_matrices=False)[2][:n_components].T


def _weights(spec, acts, counts, rate, rng) -> tuple[dict, dict]:
    """Read-outs: directions {layer: (dim, m)} and mixes {subject: {layer: (m, count)}}.

    A subject's read-out of a layer is ``directions @ mix``: sqrt(shared) x a part common to
    all participants + sqrt(1 - shared) x the subject's own, both random mixes of the basis.
    The responses to the m directions are computed once per run and mixed per subject.
    """
    shared = np.sqrt(spec.shared_weights)
    own = np.sqrt(1.0 - spec.shared_weights)
    directions, mixes = {}, {sub: {} for sub in spec.subjects}
    for layer, count in counts.items():
        basis = _readout_basis(acts[layer], spec.n_components, rate)
        k = basis.shape[1]
        common = rng.standard_normal((k, count))
        mine = {sub: rng.standard_normal((k, count)) for sub in spec.subjects}
        if k <= count * (len(spec.subjects) + 1):
            directions[layer] = basis
            for sub in spec.subjects:
                mixes[sub][layer] = shared * common + own * mine[sub]
            continue
        # many features (a dense read-out): the directions are the read-outs themselves
        directions[layer] = basis @ np.hstack([common, *mine.values()])
        eye = np.eye(count)
        for i, sub in enumerate(spec.subjects, start=1):
            mix = np.zeros((directions[layer].shape[1], count))
            mix[:count], mix[i * count : (i + 1) * count] = shared * eye, own * eye
            mixes[sub][layer] = mix
    return directions, mixes


def _responses(events, n_scans, acts, directions, rate, tr) -> dict[str, np.ndarray]:
    """One run's responses to each read-out direction {layer: (n_scans, m)}, at mid-TR."""
    times = mid_scan_times(n_scans, tr)
    onsets = events.onset.to_list()
    out = {}
    for layer, d in directions.items():
        frames = [acts[layer][path] @ d for path in events.path]
        out[layer] = np.column_stack(
            [
                hrf_response([f[:, j] for f in frames], onsets, rate, times)
                for j in range(d.shape[1])
            ]
        )
    return out


def _layout(spec: SimulationSpec, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """Planted layer of each voxel ('' for null voxels) and the ground-truth table."""
    n_vox = int(np.prod(spec.shape))
    order = rng.permutation(n_vox)
    planted_layer = np.full(n_vox, "", dtype=object)
    start = 0
    for name, count in spec.planted:
        planted_layer[order[start : start + count]] = name
        start += count
    ijk = np.array(np.unravel_index(np.arange(n_vox), spec.shape)).T
    truth = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2], "layer": planted_layer})
    if spec.surfaces:
        truth = surface_truth(truth, n_vox)
    return planted_layer, truth[truth.layer != ""].reset_index(drop=True)


def _bold_sidecar(spec: SimulationSpec) -> dict:
    """Sidecar of a preprocessed run: slice-timing corrected to the middle of the TR."""
    return {"RepetitionTime": spec.tr, "TaskName": spec.task, "SliceTimingCorrected": True,
            "StartTime": spec.tr / 2}  # fmt: skip


def _write_run(root, spec, stem, bold, events, conf) -> None:
    """The raw run (BOLD, events) and its fMRIPrep derivatives (volume, surfaces, confounds)."""
    data = bold.T.reshape(tuple(spec.shape) + (bold.shape[0],)).astype(np.float32)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-16.0, -16.0, -12.0]
    img = nb.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = spec.tr
    sub = stem.split("_")[0]
    func = root / sub / "func"
    func.mkdir(parents=True, exist_ok=True)
    img.to_filename(func / f"{stem}_bold.nii.gz")
    events.drop(columns="path").to_csv(
        func / f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a"
    )
    dfunc = root / "derivatives" / "fmriprep" / sub / "func"
    dfunc.mkdir(parents=True, exist_ok=True)
    prefix = f"{stem}_space-{SPACE}"
    img.to_filename(dfunc / f"{prefix}_desc-preproc_bold.nii.gz")
    write_json(dfunc / f"{prefix}_desc-preproc_bold.json",
               {**_bold_sidecar(spec), "SkullStripped": False})  # fmt: skip
    mask = np.ones(spec.shape, dtype=np.uint8)
    nb.Nifti1Image(mask, affine).to_filename(dfunc / f"{prefix}_desc-brain_mask.nii.gz")
    for surface in spec.surfaces:
        write_surfaces(dfunc, stem, bold.astype(np.float32), spec.tr, surface, _bold_sidecar(spec))
    conf.to_csv(dfunc / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                na_rep="n/a")  # fmt: skip
    write_json(dfunc / f"{stem}_desc-confounds_timeseries.json",
               {c: {"Description": c} for c in conf.columns})  # fmt: skip


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
        Accepted for compatibility and unused: the ground truth never reads or fills the
        pipeline's feature cache (it computes its own activations).

    Returns
    -------
    DataFrame
        The planted voxels: ``i, j, k, layer``; with ``surfaces`` also ``grayordinate``
        (CIFTI index), ``hemi`` and ``vertex`` (GIfTI; empty and -1 off the cortex). Also in
        ``code/planted_voxels.tsv``.
    """
    del cache_dir
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    _write_descriptions(root, spec)
    run_stimuli = _write_stimuli(root, spec.clip_seconds, spec.n_runs)
    schedules = [_schedule(run, spec.tr) for run in run_stimuli]
    for (events, _), run in zip(schedules, run_stimuli, strict=True):
        events["path"] = run
    acts, rate = _activations(spec, [p for run in run_stimuli for p in run])
    planted_layer, truth = _layout(spec, rng)
    (root / "code").mkdir(exist_ok=True)
    truth.to_csv(root / "code" / "planted_voxels.tsv", sep="\t", index=False)
    counts = {name: int((planted_layer == name).sum()) for name in acts}
    directions, mixes = _weights(spec, acts, counts, rate, rng)
    n_vox = planted_layer.size
    run_responses = [
        _responses(events, n_scans, acts, directions, rate, spec.tr)
        for events, n_scans in schedules
    ]
    for sub in spec.subjects:
        responses = [{k: v @ mixes[sub][k] for k, v in r.items()} for r in run_responses]
        signals = [np.zeros((n_scans, n_vox)) for _, n_scans in schedules]
        for layer in acts:
            idx = np.flatnonzero(planted_layer == layer)
            stacked = np.concatenate([r[layer] for r in responses])
            mu, sd = stacked.mean(0), np.where(stacked.std(0) > 0, stacked.std(0), 1.0)
            for signal, response in zip(signals, responses, strict=True):
                signal[:, idx] = spec.snr * (response[layer] - mu) / sd
        for r, ((events, n_scans), signal) in enumerate(zip(schedules, signals, strict=True), 1):
            conf, sources = confounds_and_artefacts(n_scans, spec.tr, rng)
            loadings = rng.standard_normal((sources.shape[1], n_vox))
            artefact = sources @ loadings * spec.artefact_scale / np.sqrt(sources.shape[1])
            noise = ar1_noise(n_scans, n_vox, spec.noise_ar, rng)
            bold = 1000.0 + 10.0 * (signal + noise + artefact)
            stem = f"sub-{sub}_task-{spec.task}_run-{r}"
            _write_run(root, spec, stem, bold, events, conf)
    return truth
