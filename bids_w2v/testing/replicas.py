"""Generated replicas of the two datasets of Millet et al. 2022, as they are published.

* :func:`narratives_replica`: Narratives (OpenNeuro ds002345) with its ``afni-nosmooth``
  derivatives: ``desc-clean`` BOLD, no confounds file, no brain mask; task ``pieman`` with the
  ``run`` entity and two ``events.tsv`` rows naming the same file (``music`` then ``story``:
  ONE playback), task ``tunnel`` without the ``run`` entity and a non-zero onset; TR 1.5 s;
  ``pieman`` also as fsaverage6 GIfTI pairs (``..._space-fsaverage6_hemi-L_desc-clean.func.gii``,
  the paper's input; the brain voxels in order are the vertices, left hemisphere first).
* :func:`lpp_replica`: Le Petit Prince (ds003643): no ``events.tsv``, stimuli
  ``task-lppEN_section-N.wav``, English runs numbered from ``run-15``, multi-echo raw BOLD, AFNI
  derivatives ``space-MNIColin27_desc-preproc_bold`` placed directly in ``derivatives/sub-*/``
  with no ``dataset_description.json``, no confounds, no mask, and the first 4 volumes of the
  acquisition removed (preprocessed scans = raw scans - 4); TR 2 s.

Names, entities and row layouts follow the published datasets; durations, volume sizes and run
counts are scaled down. Planted voxels follow one layer of the tiny wav2vec2, built with
:mod:`bids_w2v.testing.truth` alone (no code shared with the analysis, an import-linter
contract): transformers' ``output_hidden_states`` and conv hooks, a random mix of the layer's
leading slow principal axes, every model frame an event convolved with nilearn's
``compute_regressor`` (Glover HRF) at the TRUE presentation times, sampled at ``i * TR`` of the
raw acquisition (no ``StartTime`` in the sidecars), plus AR(1) noise, so a pipeline that
misplaces the audio (a second playback for a segment row, or no onset shift after dropped
volumes) recovers less.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import soundfile as sf

from bids_w2v.testing.sim_outputs import zscore
from bids_w2v.testing.simulator import _readout_basis, shipped_speech
from bids_w2v.testing.truth import (
    ar1_noise,
    frame_rate,
    hrf_response,
    layer_activations,
    load_truth_model,
    read_mono_16k,
)

PLANTED = (("conv1", 8), ("transformer1", 8))
N_AXES = 5  # a voxel mixes its layer's leading slow principal axes
SNR = 3.0  # planted signal SD / noise SD
NOISE_AR = 0.3  # AR(1) coefficient of the noise
SHAPE = (10, 10, 8)  # brain: the inner 8 x 8 x 6 voxels; zero background (nilearn's EPI mask)


@dataclass(frozen=True)
class Playback:
    """One stimulus as participants heard it: onset (s, raw acquisition time) and file."""

    onset: float
    stim_file: Path


@dataclass(frozen=True)
class ReplicaRun:
    """One run to write: where its derivative BOLD goes and what was played when."""

    bold: Path  # derivative BOLD path
    presentations: tuple[Playback, ...]  # TRUE playbacks, raw acquisition time
    n_raw_scans: int
    dropped: int = 0  # first volumes removed by the preprocessing
    surfaces: tuple[Path, Path] | None = None  # hemi-L, hemi-R GIfTIs of the same data


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _speech(
    seconds: float, *, offset: float = 0.0, reverse: bool = False
) -> tuple[np.ndarray, int]:
    """``seconds`` of the shipped barber recording (looped), from ``offset``."""
    data, sr = sf.read(shipped_speech("barber.wav"), always_2d=True)
    mono = data.mean(1)
    mono = mono[::-1] if reverse else mono
    start = int(offset * sr)
    n = int(seconds * sr)
    looped = np.concatenate([mono] * (2 + n // mono.size))
    return looped[start : start + n], sr


def _write_audio(path: Path, pieces: list[np.ndarray], sr: int) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.concatenate(pieces)
    sf.write(path, audio, sr, subtype="PCM_16")
    return audio.size / sr


def _raw_bold(path: Path, n_scans: int, tr: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.Nifti1Image(np.ones((2, 2, 2, n_scans), dtype=np.int16), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = tr
    img.to_filename(path)


def _responses(
    runs: list[ReplicaRun], model_dir: Path, rng: np.random.Generator, tr: float
) -> list[dict[str, np.ndarray]]:
    """Each run's planted responses {layer: (n_raw_scans, count)}, from :mod:`truth` alone.

    Activations with transformers (10 s windows, 5 s stride), standardised over the stimuli;
    each voxel a random mix of its layer's 5 leading slow principal axes; every model frame an
    event at its TRUE presentation time, convolved with nilearn's Glover HRF and sampled at
    ``i * TR`` of the raw acquisition (the replicas' sidecars carry no ``StartTime``).
    """
    model = load_truth_model(str(model_dir), random_init=False, seed=0)
    rate = frame_rate(model)
    layers = [name for name, _ in PLANTED]
    stims = sorted({p.stim_file for r in runs for p in r.presentations})
    acts = {layer: {} for layer in layers}
    for stim in stims:
        values = layer_activations(model, read_mono_16k(stim), layers)
        for layer in layers:
            acts[layer][stim] = values[layer]
    mixes = {}
    for layer, count in PLANTED:
        stacked = np.concatenate(list(acts[layer].values()))
        mu, sd = stacked.mean(0), stacked.std(0)
        sd = np.where(sd > 1e-6 * max(sd.max(), 1e-12), sd, 1.0)
        acts[layer] = {stim: (v - mu) / sd for stim, v in acts[layer].items()}
        basis = _readout_basis(acts[layer], N_AXES, rate)
        mixes[layer] = basis @ rng.standard_normal((basis.shape[1], count))
    out = []
    for run in runs:
        times = np.arange(run.n_raw_scans) * tr
        onsets = [p.onset for p in run.presentations]
        per_layer = {}
        for layer, mix in mixes.items():
            frames = [acts[layer][p.stim_file] @ mix for p in run.presentations]
            per_layer[layer] = np.column_stack(
                [hrf_response([f[:, j] for f in frames], onsets, rate, times)
                 for j in range(mix.shape[1])]
            )  # fmt: skip
        out.append(per_layer)
    return out


def _plant(
    runs: list[ReplicaRun],
    model_dir: Path,
    *,
    tr: float,
    seed: int,
    snr: float = SNR,
) -> pd.DataFrame:
    """Write every run's derivative BOLD with planted voxels; return the ground truth."""
    rng = np.random.default_rng(seed)
    responses = _responses(runs, model_dir, rng, tr)
    brain = np.zeros(SHAPE, dtype=bool)
    brain[1:-1, 1:-1, 1:-1] = True
    core = np.zeros(SHAPE, dtype=bool)  # planted voxels away from the mask's edge
    core[3:-3, 3:-3, 3:-3] = True
    order = rng.permutation(np.flatnonzero(core.reshape(-1)))
    planted_layer = np.full(brain.size, "", dtype=object)
    start = 0
    for name, count in PLANTED:
        planted_layer[order[start : start + count]] = name
        start += count
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    for run, response in zip(runs, responses, strict=True):
        signal = np.zeros((run.n_raw_scans, brain.size))
        for name, _ in PLANTED:
            signal[:, planted_layer == name] = snr * zscore(response[name])
        noise = ar1_noise(run.n_raw_scans, brain.size, NOISE_AR, rng)
        bold = (1000.0 + 10.0 * (signal + noise)) * brain.reshape(-1)
        bold = bold[run.dropped :]  # the preprocessing removed the first volumes
        img = nb.Nifti1Image(bold.T.reshape(SHAPE + (bold.shape[0],)).astype(np.float32), affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = tr
        run.bold.parent.mkdir(parents=True, exist_ok=True)
        img.to_filename(run.bold)
        if run.surfaces:
            _write_gifti_pair(run.surfaces, bold[:, brain.reshape(-1)], tr)
    ijk = np.array(np.unravel_index(np.arange(brain.size), SHAPE)).T
    truth = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2], "layer": planted_layer})
    # on surfaces, the brain voxels in order are the vertices, left hemisphere first
    vertex = np.full(brain.size, -1)
    vertex[brain.reshape(-1)] = np.arange(int(brain.sum()))
    half = int(brain.sum()) // 2
    truth["hemi"] = np.where(vertex < half, "L", "R")
    truth["vertex"] = np.where(vertex < half, vertex, vertex - half)
    return truth[truth.layer != ""].reset_index(drop=True)


def _write_gifti_pair(paths: tuple[Path, Path], data: np.ndarray, tr: float) -> None:
    """Write (scans x vertices) as a GIfTI pair: first half hemi-L, second half hemi-R."""
    half = data.shape[1] // 2
    for path, values, name in zip(paths, (data[:, :half], data[:, half:]),
                                  ("CortexLeft", "CortexRight"), strict=True):  # fmt: skip
        darrays = [
            nb.gifti.GiftiDataArray(
                row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES", datatype="float32",
                meta=nb.gifti.GiftiMetaData({"TimeStep": str(tr * 1000)}),
            )
            for row in values
        ]  # fmt: skip
        meta = nb.gifti.GiftiMetaData({"AnatomicalStructurePrimary": name})
        path.parent.mkdir(parents=True, exist_ok=True)
        nb.save(nb.GiftiImage(darrays=darrays, meta=meta), path)


def narratives_replica(root: Path, model_dir: Path, *, seed: int = 0) -> pd.DataFrame:
    """Write a Narratives-like dataset (raw + ``derivatives/afni-nosmooth``) under ``root``.

    ``pieman`` (runs 1 and 2): ``pieman_audio.wav`` is 6 s of music, 2 s of silence and a story;
    its events file has the rows ``0.0 6.0 music pieman_audio.wav`` and ``8.0 ... story
    pieman_audio.wav`` (one playback from 0 s). ``tunnel`` (no run entity): one row at 3 s.

    Returns
    -------
    DataFrame
        Planted voxels (``i, j, k, layer``).
    """
    root = Path(root)
    tr, sub = 1.5, "001"
    _write_json(root / "dataset_description.json", {"Name": "Narratives", "BIDSVersion": "1.2.1"})
    for task in ("pieman", "tunnel"):
        _write_json(root / f"task-{task}_bold.json", {"TaskName": task, "RepetitionTime": tr})
    story, sr = _speech(100.0)
    t = np.arange(int(6.0 * sr)) / sr
    music = 0.2 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t))
    pieman = root / "stimuli" / "pieman_audio.wav"
    total = _write_audio(pieman, [music, np.zeros(2 * sr), story], sr)
    tunnel_audio, _ = _speech(90.0, offset=20.0, reverse=True)
    tunnel = root / "stimuli" / "tunnel_audio.wav"
    tunnel_len = _write_audio(tunnel, [tunnel_audio], sr)

    deriv = root / "derivatives" / "afni-nosmooth"
    _write_json(
        deriv / "dataset_description.json",
        {"Name": "afni-nosmooth", "BIDSVersion": "1.2.1", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "afni-nosmooth"}]},
    )  # fmt: skip
    func, dfunc = root / f"sub-{sub}" / "func", deriv / f"sub-{sub}" / "func"
    runs = []
    for run in (1, 2):
        stem = f"sub-{sub}_task-pieman_run-{run}"
        n_scans = int(np.ceil((total + 9.0) / tr))
        func.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"onset": [0.0, 8.0], "duration": [6.0, total - 8.0],
             "trial_type": ["music", "story"], "stim_file": ["pieman_audio.wav"] * 2}
        ).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)  # fmt: skip
        _raw_bold(func / f"{stem}_bold.nii.gz", n_scans, tr)
        runs.append(
            ReplicaRun(
                bold=dfunc / f"{stem}_space-MNI152NLin2009cAsym_desc-clean_bold.nii.gz",
                presentations=(Playback(0.0, pieman.resolve()),),
                n_raw_scans=n_scans,
                surfaces=tuple(
                    dfunc / f"{stem}_space-fsaverage6_hemi-{h}_desc-clean.func.gii" for h in "LR"
                ),
            )
        )
    stem = f"sub-{sub}_task-tunnel"
    n_tunnel = int(np.ceil((3.0 + tunnel_len + 9.0) / tr))
    pd.DataFrame(
        {"onset": [3.0], "duration": [tunnel_len], "trial_type": ["story"],
         "stim_file": ["tunnel_audio.wav"]}
    ).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)  # fmt: skip
    _raw_bold(func / f"{stem}_bold.nii.gz", n_tunnel, tr)
    runs.append(
        ReplicaRun(
            bold=dfunc / f"{stem}_space-MNI152NLin2009cAsym_desc-clean_bold.nii.gz",
            presentations=(Playback(3.0, tunnel.resolve()),),
            n_raw_scans=n_tunnel,
        )
    )
    return _plant(runs, model_dir, tr=tr, seed=seed)


#: The English stimulus map of Le Petit Prince: runs 15-23 play sections 1-9.
LPP_EN_MAP = "task\trun\tstim_file\tonset\n" + "".join(
    f"lppEN\t{run}\ttask-lppEN_section-{run - 14}.wav\t0\n" for run in range(15, 24)
)


def lpp_replica(
    root: Path, model_dir: Path, *, n_runs: int = 3, dropped: int = 4, seed: int = 1
) -> pd.DataFrame:
    """Write a Le Petit Prince-like dataset (English, ``sub-EN057``) under ``root``.

    ``n_runs`` runs from ``run-15`` play ``task-lppEN_section-1.wav`` onwards at 0 s of the raw
    acquisition; the derivatives lack the first ``dropped`` volumes. The stimulus map for all 9
    sections is written to ``root/code/stimulus_map_lppEN.tsv`` (:data:`LPP_EN_MAP`).

    Returns
    -------
    DataFrame
        Planted voxels (``i, j, k, layer``).
    """
    root = Path(root)
    tr, sub = 2.0, "EN057"
    _write_json(
        root / "dataset_description.json", {"Name": "Le Petit Prince", "BIDSVersion": "1.6.0"}
    )
    _write_json(root / "task-lppEN_bold.json", {"TaskName": "lppEN", "RepetitionTime": tr})
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / "stimulus_map_lppEN.tsv").write_text(LPP_EN_MAP)
    func = root / f"sub-{sub}" / "func"
    dfunc = root / "derivatives" / f"sub-{sub}" / "func"  # no dataset_description.json
    runs = []
    for i in range(n_runs):
        section, run = i + 1, 15 + i
        audio, sr = _speech(80.0, offset=17.0 * i, reverse=bool(i % 2))
        wav = root / "stimuli" / f"task-lppEN_section-{section}.wav"
        length = _write_audio(wav, [audio], sr)
        n_raw = int(np.ceil((length + 10.0) / tr))
        for echo in (1, 2, 3):
            _raw_bold(func / f"sub-{sub}_task-lppEN_run-{run}_echo-{echo}_bold.nii.gz", n_raw, tr)
        runs.append(
            ReplicaRun(
                bold=dfunc / f"sub-{sub}_task-lppEN_run-{run}_space-MNIColin27_desc-preproc_bold"
                ".nii.gz",
                presentations=(Playback(0.0, wav.resolve()),),
                n_raw_scans=n_raw,
                dropped=dropped,
            )
        )
    return _plant(runs, model_dir, tr=tr, seed=seed)
