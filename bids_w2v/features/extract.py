"""Layer activations of a speech encoder over a whole stimulus, with overlapping windows.

Following Millet, Caucheteux et al. (2022), the stimulus is normalised once, cut into windows of
``window_s`` seconds every ``stride_s`` seconds, each window goes through the model, and the
frames of every window are put back at their place in the stimulus; frames seen by several
windows are averaged. Convolutional layers are average-pooled to the model frame rate (50 Hz for
wav2vec2) as soon as they are computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from bids_w2v.errors import AudioError, InputError
from bids_w2v.features.layers import available_layers, describe_layers
from bids_w2v.features.models import LoadedModel

__all__ = [
    "Features",
    "extract_features",
    "model_hop",
    "plan_windows",
    "receptive_field",
]


@dataclass
class Features:
    """Activations of selected layers, one row per model frame.

    Attributes
    ----------
    layers : dict of str to numpy.ndarray
        ``(n_frames, dim)`` float32 array per layer. Frame ``j`` starts ``j / frame_rate``
        seconds after the stimulus onset.
    frame_rate : float
        Model frames per second (sampling rate / product of the conv strides; 50 for wav2vec2).
    """

    layers: dict[str, np.ndarray]
    frame_rate: float

    @property
    def n_frames(self) -> int:
        """Number of frames (0 when no layer is stored)."""
        return next(iter(self.layers.values())).shape[0] if self.layers else 0

    def frame_onsets(self) -> np.ndarray:
        """Onset of each frame in seconds from the stimulus start."""
        return np.arange(self.n_frames, dtype=np.float64) / self.frame_rate


class _StopForward(Exception):
    """Raised by the hook of the deepest requested layer: later layers are not needed."""


def model_hop(model: nn.Module) -> int:
    """Samples between consecutive model frames (product of the conv strides, 320 for wav2vec2)."""
    return int(math.prod(int(s) for s in model.config.conv_stride))


def receptive_field(model: nn.Module) -> int:
    """Samples seen by one frame of the conv front end (400 for wav2vec2)."""
    field, jump = 1, 1
    for kernel, stride in zip(model.config.conv_kernel, model.config.conv_stride, strict=True):
        field += (int(kernel) - 1) * jump
        jump *= int(stride)
    return field


def plan_windows(
    n_samples: int, window: int | None, stride: int, hop: int, field: int
) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` samples of the analysis windows.

    Parameters
    ----------
    n_samples : int
        Length of the stimulus.
    window : int or None
        Window length in samples; None (or longer than the stimulus) gives one window.
    stride : int
        Samples between window starts, a multiple of ``hop``.
    hop : int
        Samples per model frame.
    field : int
        Receptive field of one frame, in samples.

    Returns
    -------
    list of tuple of int
        Windows start at 0, stride, 2 * stride ...; the last one ends at the stimulus end and
        no window starts once a previous one reached the end. A final piece shorter than the
        receptive field is replaced by a window of about ``window`` samples ending at the end.
    """
    if window is None or window >= n_samples:
        return [(0, n_samples)]
    bounds = []
    start = 0
    while True:
        end = min(start + window, n_samples)
        if end - start < field:
            start = -(-(n_samples - window) // hop) * hop
            end = n_samples
        bounds.append((start, end))
        if end >= n_samples:
            return bounds
        start += stride


def _normalise(audio: np.ndarray) -> np.ndarray:
    x = audio.astype(np.float64)
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)


def _register_hooks(
    model: nn.Module, layers: Sequence[str], hop: int, captured: dict, state: dict
) -> list:
    available = available_layers(model)
    deepest = max(layers, key=available.index)
    stop_early = deepest != available[-1]
    strides = [int(s) for s in model.config.conv_stride]
    handles = []

    def make_hook(name: str, pool: int | None) -> Callable:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor | tuple) -> None:
            out = output[0] if isinstance(output, tuple) else output
            if pool is not None:  # (batch, channels, time) at the layer's own rate
                if pool > 1:
                    out = F.avg_pool1d(out, kernel_size=pool, stride=pool)
                out = out[:, :, : state["n_keep"]].transpose(1, 2)
            captured[name] = out.float().cpu().contiguous().numpy()
            if stop_early and name == deepest:
                raise _StopForward

        return hook

    for name in layers:
        index = int(name.removeprefix("conv").removeprefix("transformer"))
        if name.startswith("conv"):
            module = model.feature_extractor.conv_layers[index]
            pool = hop // math.prod(strides[: index + 1])
        else:
            module, pool = model.encoder.layers[index], None
        handles.append(module.register_forward_hook(make_hook(name, pool)))
    state["conv_only"] = all(n.startswith("conv") for n in layers)
    return handles


def _layer_dims(model: nn.Module, layers: Sequence[str]) -> dict[str, int]:
    dims = {}
    for name in layers:
        if name.startswith("conv"):
            dims[name] = int(model.config.conv_dim[int(name.removeprefix("conv"))])
        else:
            dims[name] = int(model.config.hidden_size)
    return dims


def extract_features(
    loaded: LoadedModel,
    audio: np.ndarray,
    *,
    layers: Sequence[str],
    window_s: float | None = 10.0,
    stride_s: float = 5.0,
    batch_size: int = 4,
    progress: bool = False,
) -> Features:
    """Compute layer activations over a whole stimulus with overlapping windows.

    Parameters
    ----------
    loaded : LoadedModel
        Model from :func:`~bids_w2v.features.models.load_model`.
    audio : numpy.ndarray
        1-D waveform at ``loaded.sampling_rate`` (see :func:`bids_w2v.io.audio.load_audio`).
    layers : sequence of str
        Layer names from :func:`~bids_w2v.features.layers.available_layers`.
    window_s : float or None, default 10.0
        Window length in seconds; None runs a single pass over the whole stimulus.
    stride_s : float, default 5.0
        Seconds between window starts (rounded to a whole number of model frames); must not
        exceed ``window_s``.
    batch_size : int, default 4
        Windows of equal length processed together.
    progress : bool, default False
        Show a progress bar in seconds of audio.

    Returns
    -------
    Features
        ``(n_frames, dim)`` float32 per layer, where ``n_frames`` is the frame count of one
        pass over the whole stimulus; frames covered by several windows are averaged.

    Raises
    ------
    AudioError
        If the audio is not 1-D, not finite, or shorter than the model's receptive field.
    InputError
        If a layer is unknown or the window/stride/batch options are invalid.
    """
    model = loaded.model
    available = available_layers(model)
    layers = list(dict.fromkeys(layers))
    unknown = [name for name in layers if name not in available]
    if unknown or not layers:
        raise InputError(
            f"Cannot extract layers {unknown or layers} from the model '{loaded.name}': it has "
            f"the layers {describe_layers(available)}."
        )
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or not np.all(np.isfinite(audio)):
        raise AudioError(
            f"The audio given to the model '{loaded.name}' must be a finite 1-D waveform; got "
            f"an array of shape {audio.shape}. Load stimuli with bids_w2v.io.audio.load_audio."
        )
    sr, hop, field = loaded.sampling_rate, model_hop(model), receptive_field(model)
    n = audio.shape[0]
    if n < field:
        raise AudioError(
            f"The audio is {n} samples ({n / sr:.4f} s) long, shorter than the receptive field "
            f"of the model '{loaded.name}' ({field} samples, {field / sr:.3f} s), so it yields "
            "no frame. Use a longer stimulus."
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    window = None if window_s is None else int(round(window_s * sr))
    stride = max(hop, int(round(stride_s * sr / hop)) * hop)
    if window is not None:
        if window < 2 * field + hop:
            raise InputError(
                f"The window of {window_s} s is too short for the model '{loaded.name}'; use at "
                f"least {(2 * field + hop) / sr:.3f} s (10 s reproduces the paper)."
            )
        if stride_s <= 0 or stride > window:
            raise InputError(
                f"The stride must be positive and not longer than the window, otherwise parts "
                f"of the stimulus are never seen; got stride {stride_s} s, window {window_s} s."
            )
    n_frames = int(model._get_feat_extract_output_lengths(n))
    if loaded.do_normalize:
        audio = _normalise(audio)
    windows = plan_windows(n, window, stride, hop, field)
    device = next(model.parameters()).device

    dims = _layer_dims(model, layers)
    sums = {name: np.zeros((n_frames, dims[name]), dtype=np.float32) for name in layers}
    counts = np.zeros(n_frames, dtype=np.float32)
    captured: dict[str, np.ndarray] = {}
    state: dict = {}
    batches: list[list[tuple[int, int]]] = []
    for bound in windows:
        last = batches[-1] if batches else None
        same = last and len(last) < batch_size and last[0][1] - last[0][0] == bound[1] - bound[0]
        if same:
            last.append(bound)
        else:
            batches.append([bound])

    handles = _register_hooks(model, layers, hop, captured, state)
    bar = tqdm(
        total=n / sr,
        desc=loaded.label,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]",
        disable=not progress,
    )
    done = 0
    try:
        with torch.inference_mode():
            for batch in batches:
                length = batch[0][1] - batch[0][0]
                n_keep = int(model._get_feat_extract_output_lengths(length))
                state["n_keep"] = n_keep
                x = torch.from_numpy(np.stack([audio[s:e] for s, e in batch])).to(device)
                captured.clear()
                try:
                    if state["conv_only"]:
                        model.feature_extractor(x)
                    else:
                        model(input_values=x)
                except _StopForward:
                    pass
                for b, (start, _) in enumerate(batch):
                    offset = start // hop
                    counts[offset : offset + n_keep] += 1
                    for name in layers:
                        sums[name][offset : offset + n_keep] += captured[name][b, :n_keep]
                new_done = max(done, batch[-1][1])
                bar.update((new_done - done) / sr)
                done = new_done
    finally:
        for handle in handles:
            handle.remove()
        bar.close()
    if not np.all(counts > 0):  # pragma: no cover - guaranteed by plan_windows
        raise RuntimeError("some frames were not covered by any window")
    for name in layers:
        sums[name] /= counts[:, None]
    return Features(layers=sums, frame_rate=sr / hop)
