"""Ground truth of the simulated datasets, built without any of the analysis's code.

The planted BOLD must not share a line with what it checks (``bids_w2v.features``, ``inputs``,
``bold``, ``encoding``: an import-linter contract in ``pyproject.toml`` forbids it), so that a
layer off by one, a timing offset or a wrong HRF in the analysis shows as a failed recovery
instead of cancelling out. Here:

* the audio is read with soundfile, mixed to mono, resampled with scipy's ``resample_poly`` and
  normalised over the stimulus (``Wav2Vec2FeatureExtractor``'s ``do_normalize``);
* the model is loaded with transformers (``AutoModel.from_pretrained`` of a folder, or
  ``torch.manual_seed(seed)`` then ``AutoModel.from_config`` for random weights, from the
  configuration file shipped in ``bids_w2v/data/models``);
* transformer block ``k`` (``transformer{k}``, the output of ``model.encoder.layers[k]``) is
  ``hidden_states[k + 1]`` of ``model(input_values, output_hidden_states=True)``
  (``hidden_states[0]`` is the input of block 0: the projected conv features plus the
  positional convolution, layer-normed); conv block ``i`` (``conv{i}``) is the output of
  ``model.feature_extractor.conv_layers[i]``, captured with a forward hook written here and
  averaged over the conv samples of each model frame (its own rate is 320 / prod(strides[:i+1])
  samples per model frame);
* windows of ``window_s`` seconds every ``stride_s`` seconds, overlapping frames averaged (the
  paper's scheme, written again here); ``window_s=None``: one pass over the stimulus;
* each voxel reads out its layer's standardised activations, frame by frame; the read-out is
  placed at the presentation onsets, every model frame an event (duration one frame), and
  convolved with nilearn's ``compute_regressor`` (Glover HRF) at the MIDDLE of each volume
  (``StartTime`` = TR / 2, fMRIPrep's slice-timing reference, written in the sidecars);
* noise is AR(1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLING_RATE = 16_000


def read_mono_16k(path: Path) -> np.ndarray:
    """A stimulus as float64 mono at 16 kHz (channels averaged, polyphase resampling)."""
    from scipy.signal import resample_poly

    data, sr = sf.read(path, always_2d=True, dtype="float64")
    mono = data.mean(axis=1)
    if sr != SAMPLING_RATE:
        ratio = Fraction(SAMPLING_RATE, int(sr))
        mono = resample_poly(mono, ratio.numerator, ratio.denominator)
    return mono


def load_truth_model(name: str, *, random_init: bool, seed: int):
    """The speech encoder, loaded with transformers alone (eval mode, float32).

    A folder is read with ``AutoModel.from_pretrained`` (or built from its ``config.json`` with
    random weights); a hub id with ``random_init`` uses the configuration shipped with bids-w2v
    (``bids_w2v/data/models/<name>.json``). Random weights: ``torch.manual_seed(seed)`` right
    before ``AutoModel.from_config``, as bids-w2v documents for ``--random-init --seed``.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    folder = Path(name).expanduser()
    if folder.is_dir() and not random_init:
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    else:
        if folder.is_dir():
            config_dict = json.loads((folder / "config.json").read_text())
        elif random_init:
            shipped = (
                resources.files("bids_w2v") / "data" / "models" / f"{name.split('/')[-1]}.json"
            )
            config_dict = json.loads(shipped.read_text(encoding="utf-8"))
        else:
            return AutoModel.from_pretrained(name, local_files_only=True).eval()
        config = AutoConfig.for_model(**config_dict)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = AutoModel.from_config(config, dtype=torch.float32)
    return model.float().eval()


def _conv_lengths(model, n_samples: int) -> list[int]:
    """Output length of each conv block for ``n_samples`` input samples."""
    lengths, length = [], n_samples
    for kernel, stride in zip(model.config.conv_kernel, model.config.conv_stride, strict=True):
        length = (length - int(kernel)) // int(stride) + 1
        lengths.append(length)
    return lengths


def _window_starts(n: int, window: int | None, stride: int, hop: int) -> list[tuple[int, int]]:
    """(start, stop) samples of each window; starts on the frame grid, the last one ends at n."""
    if window is None or n <= window:
        return [(0, n)]
    spans = [(s, s + window) for s in range(0, n - window + 1, stride)]
    if spans[-1][1] < n:
        last = ((n - window) // hop) * hop
        spans.append((last, n))
    return spans


def _one_pass(model, audio: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Activations of one window: (frames, dim) per layer at the model frame rate."""
    import torch

    strides = [int(s) for s in model.config.conv_stride]
    hop = int(np.prod(strides))
    conv_out: dict[int, np.ndarray] = {}
    handles = []
    for index, module in enumerate(model.feature_extractor.conv_layers):
        if f"conv{index}" in layers:

            def hook(_module, _args, output, index=index):
                conv_out[index] = output[0].detach().float().numpy()  # (channels, time)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(audio[None].astype(np.float32)), output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    n_frames = out.last_hidden_state.shape[1]
    acts = {}
    for name in layers:
        index = int(name.removeprefix("conv").removeprefix("transformer"))
        if name.startswith("conv"):
            per_frame = hop // int(np.prod(strides[: index + 1]))
            values = conv_out[index][:, : n_frames * per_frame]
            acts[name] = values.reshape(values.shape[0], n_frames, per_frame).mean(2).T
        else:
            acts[name] = out.hidden_states[index + 1][0].float().numpy()
    return acts


def layer_activations(
    model,
    audio: np.ndarray,
    layers: Sequence[str],
    *,
    window_s: float | None = 10.0,
    stride_s: float = 5.0,
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` over a whole stimulus: (n_frames, dim) float64 per layer.

    The audio (16 kHz) is normalised over the stimulus, cut into windows of ``window_s``
    seconds every ``stride_s`` seconds (``None``: one pass), and the frames seen by several
    windows are averaged.
    """
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    hop = int(np.prod([int(s) for s in model.config.conv_stride]))
    n_frames = _conv_lengths(model, audio.size)[-1]
    window = None if window_s is None else int(round(window_s * SAMPLING_RATE))
    stride = max(hop, int(round(stride_s * SAMPLING_RATE / hop)) * hop)
    sums: dict[str, np.ndarray] = {}
    counts = np.zeros(n_frames)
    for start, stop in _window_starts(audio.size, window, stride, hop):
        acts = _one_pass(model, audio[start:stop], layers)
        first = start // hop
        for name, values in acts.items():
            rows = values[: n_frames - first]
            total = sums.setdefault(name, np.zeros((n_frames, values.shape[1])))
            total[first : first + rows.shape[0]] += rows
        counts[first : first + rows.shape[0]] += 1
    return {name: total / np.maximum(counts, 1)[:, None] for name, total in sums.items()}


def frame_rate(model) -> float:
    """Model frames per second (16 kHz / product of the conv strides)."""
    return SAMPLING_RATE / float(np.prod([int(s) for s in model.config.conv_stride]))


def mid_scan_times(n_scans: int, tr: float) -> np.ndarray:
    """Acquisition times of the volumes after slice-timing correction to the middle of the TR."""
    return (np.arange(n_scans) + 0.5) * tr


def hrf_response(
    frame_signals: Sequence[np.ndarray],
    onsets: Sequence[float],
    rate: float,
    scan_times: np.ndarray,
) -> np.ndarray:
    """BOLD response to per-frame amplitudes: nilearn's ``compute_regressor`` (Glover HRF).

    Parameters
    ----------
    frame_signals : sequence of ndarray
        One 1-D array of amplitudes per presented stimulus, one value per model frame.
    onsets : sequence of float
        Onset of each stimulus (seconds from the first volume).
    rate : float
        Model frames per second.
    scan_times : ndarray
        Times at which the volumes are sampled.

    Returns
    -------
    ndarray
        (n_scans,) response.
    """
    from nilearn.glm.first_level import compute_regressor

    times = np.concatenate(
        [o + np.arange(s.size) / rate for s, o in zip(frame_signals, onsets, strict=True)]
    )
    values = np.concatenate(frame_signals)
    condition = np.vstack([times, np.full(times.size, 1.0 / rate), values])
    regressor, _ = compute_regressor(condition, "glover", scan_times, oversampling=50)
    return regressor[:, 0]


def ar1_noise(n_scans: int, n_voxels: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise with unit variance: x[t] = rho x[t-1] + sqrt(1 - rho^2) e[t]."""
    noise = np.empty((n_scans, n_voxels))
    noise[0] = rng.standard_normal(n_voxels)
    innovations = rng.standard_normal((n_scans, n_voxels)) * np.sqrt(1.0 - rho**2)
    for t in range(1, n_scans):
        noise[t] = rho * noise[t - 1] + innovations[t]
    return noise
