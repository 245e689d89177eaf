"""Layer activations of a speech encoder over a whole stimulus, with overlapping windows.

Following Millet, Caucheteux et al. (2022), the stimulus is normalised once, cut into windows of
``window_s`` seconds every ``stride_s`` seconds, each window goes through the model, and the
frames of every window are put back at their place in the stimulus; frames seen by several
windows are averaged. Convolutional layers are average-pooled to the model frame rate (50 Hz for
wav2vec2) as soon as they are computed, and each frame is handed on (to memory or to a file) as
soon as no later window covers it, so memory does not grow with the stimulus. A causal mode
computes each frame from a window that ends right after it (Antonello et al., 2023).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bids_w2v.errors import AudioError, InputError
from bids_w2v.features.acoustic import ACOUSTIC_TYPES, acoustic_stream
from bids_w2v.features.families import context_samples, frame_count, prepare_inputs
from bids_w2v.features.hooks import StopForward, layer_dims, register_hooks
from bids_w2v.features.layers import available_layers, describe_layers
from bids_w2v.features.models import LoadedModel
from bids_w2v.features.progress import ExtractionProgress
from bids_w2v.features.windows import (
    batch_windows,
    model_hop,
    plan_causal_windows,
    plan_windows,
    receptive_field,
)

__all__ = ["Features", "RowWriter", "SinkFactory", "extract_features", "stream_features"]

#: Added to the variance when normalising audio, as transformers' ``Wav2Vec2FeatureExtractor``.
NORM_EPS = 1e-7


@dataclass
class Features:
    """Activations of selected layers, one row per model frame.

    Attributes
    ----------
    layers : mapping of str to numpy.ndarray
        ``(n_frames, dim)`` float32 array per layer (read-only memory maps when loaded from
        the cache: each is mapped when accessed). Frame ``j`` starts ``j / frame_rate``
        seconds after the stimulus onset.
    frame_rate : float
        Model frames per second (sampling rate / product of the conv strides; 50 for wav2vec2).
    """

    layers: Mapping[str, np.ndarray]
    frame_rate: float

    @property
    def n_frames(self) -> int:
        """Number of frames (0 when no layer is stored)."""
        if not self.layers:
            return 0
        return int(self.layers[next(iter(self.layers))].shape[0])


def _audio_stats(audio: np.ndarray, chunk: int = 1 << 20) -> tuple[float, float]:
    """Mean and standard deviation (with :data:`NORM_EPS`) in float64, chunk by chunk."""
    total, total_sq = 0.0, 0.0
    for i in range(0, audio.shape[0], chunk):
        part = audio[i : i + chunk].astype(np.float64)
        total += float(part.sum())
        total_sq += float(np.square(part).sum())
    n = max(audio.shape[0], 1)
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0)
    return mean, float(np.sqrt(var + NORM_EPS))


#: ``write(layer, first_frame, rows)``: receives each frame of each layer exactly once, in order.
RowWriter = Callable[[str, int, np.ndarray], None]
#: ``open_sink(n_frames, dims)`` returns the RowWriter of a stimulus.
SinkFactory = Callable[[int, Mapping[str, int]], RowWriter]


class _OverlapAverager:
    """Sums of the frames of the windows seen so far, over a sliding range of frames.

    Windows arrive in order of their start, so frames before the start of the current window
    are final: they are averaged, handed to ``write`` and dropped. Memory is one window of
    frames per layer, whatever the stimulus length.
    """

    def __init__(self, dims: Mapping[str, int], capacity: int, write: RowWriter) -> None:
        self.base = 0
        self.write = write
        self.sums = {
            name: np.zeros((capacity, dim), dtype=np.float32) for name, dim in dims.items()
        }
        self.counts = np.zeros(capacity, dtype=np.float32)

    def add(self, offset: int, rows: Mapping[str, np.ndarray]) -> None:
        self.flush(offset)
        k = offset - self.base
        n = next(iter(rows.values())).shape[0]
        self.counts[k : k + n] += 1
        for name, values in rows.items():
            self.sums[name][k : k + n] += values

    def flush(self, upto: int) -> None:
        m = upto - self.base
        if m <= 0:
            return
        if not np.all(self.counts[:m] > 0):  # pragma: no cover - guaranteed by plan_windows
            raise RuntimeError("some frames were not covered by any window")
        for name, sums in self.sums.items():
            self.write(name, self.base, sums[:m] / self.counts[:m, None])
            sums[:-m] = sums[m:].copy()
            sums[-m:] = 0
        self.counts[:-m] = self.counts[m:].copy()
        self.counts[-m:] = 0
        self.base = upto


def _check_inputs(
    loaded: LoadedModel, audio: np.ndarray, layers: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    available = available_layers(loaded.model)
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
            f"an array of shape {audio.shape}. Load stimuli with bids_w2v.inputs.audio.load_audio."
        )
    return layers, audio


def stream_features(
    loaded: LoadedModel,
    audio: np.ndarray,
    open_sink: SinkFactory,
    *,
    layers: Sequence[str],
    window_s: float | None = 10.0,
    stride_s: float = 5.0,
    batch_size: int = 4,
    causal: bool = False,
    progress: bool | str = False,
) -> float:
    """Compute layer activations over a stimulus and hand them to a sink as they are final.

    Memory does not grow with the stimulus: besides the audio, only the activations of one
    batch of windows and one window of frame sums per layer are held; each frame is written
    once, in order, as soon as no later window covers it.

    Parameters
    ----------
    loaded : LoadedModel
        Model from :func:`~bids_w2v.features.models.load_model` (its device and dtype are
        used; activations are returned in float32).
    audio : numpy.ndarray
        1-D waveform at ``loaded.sampling_rate`` (see :func:`bids_w2v.inputs.audio.load_audio`).
    open_sink : callable
        ``open_sink(n_frames, dims)`` is called once with the number of frames of the stimulus
        and the width of each layer; it returns ``write(layer, first_frame, rows)``, which then
        receives every frame of every layer exactly once, in increasing frame order.
    layers : sequence of str
        Layer names from :func:`~bids_w2v.features.layers.available_layers`.
    window_s : float or None, default 10.0
        Window length in seconds; None runs a single pass over the whole stimulus.
    stride_s : float, default 5.0
        Seconds between window starts (rounded to a whole number of model frames); must not
        exceed ``window_s``.
    batch_size : int, default 4
        Windows of equal length processed together.
    causal : bool, default False
        Each frame sees only the past: windows of ``window_s`` seconds end every ``stride_s``
        seconds and each frame is taken from the first window that holds its receptive field,
        so it sees at most ``window_s`` seconds of past audio and, after its own receptive
        field, at most ``stride_s`` seconds (less than one stride) of future audio; nothing is
        averaged. The audio is normalised within each window (not over the whole stimulus,
        whose statistics depend on the future). A small stride (e.g. 0.1 s) approaches strict
        causality at the cost of ``window_s / stride_s`` forward passes per window of audio.
    progress : bool or str or progress part, default False
        Show a progress bar on stderr (seconds of audio done, real-time factor); a string is
        used as the bar's label; an object with ``advance_to(seconds)`` (a part of a larger
        :class:`bids_w2v.progress.Progress`, see its ``offset``) receives the seconds done.

    Returns
    -------
    float
        Model frames per second (sampling rate / product of the conv strides, 50 for wav2vec2).

    Raises
    ------
    AudioError
        If the audio is not 1-D, not finite, or shorter than the model's receptive field.
    InputError
        If a layer is unknown or the window/stride/batch options are invalid.
    """
    if loaded.model_type in ACOUSTIC_TYPES:
        layers, audio = _check_inputs(loaded, audio, layers)
        return acoustic_stream(loaded, audio, open_sink, layers)
    model = loaded.model
    layers, audio = _check_inputs(loaded, audio, layers)
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
    if causal and window_s is None:
        raise InputError(
            "Causal extraction needs a window (--window SECONDS): each frame is computed from "
            "the window of audio that ends right after it."
        )
    window = None if window_s is None else int(round(window_s * sr))
    context = context_samples(model)
    if context is not None and (window is None or window > context):
        raise InputError(
            f"The model '{loaded.name}' ({loaded.model_type}) only accepts {context / sr:g} s of "
            f"audio at a time (its fixed context), but the window is "
            f"{'the whole stimulus' if window is None else f'{window_s} s'}. Use --window "
            f"{context / sr:g} or shorter (10 s reproduces the paper; each window is padded "
            "with silence to the context and only its own frames are kept)."
        )
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
    n_frames = frame_count(model, n)
    normalise_once = loaded.do_normalize and not causal
    mean, std = _audio_stats(audio) if normalise_once else (0.0, 1.0)
    if causal:
        windows = plan_causal_windows(n, window, stride, hop, field)
    else:
        windows = plan_windows(n, window, stride, hop, field)
    first = next(model.parameters())
    device, dtype = first.device, first.dtype

    dims = layer_dims(model, layers)
    write = open_sink(n_frames, dims)
    capacity = max(frame_count(model, e - s) for s, e in windows)
    averager = None if causal else _OverlapAverager(dims, capacity, write)
    next_frame = 0  # causal: first frame not written yet
    captured: dict[str, np.ndarray] = {}
    state: dict = {}
    handles = register_hooks(model, layers, hop, captured, state)
    if hasattr(progress, "advance_to"):  # a part of the caller's progress (Progress.offset)
        bar = progress
    else:
        label = progress if isinstance(progress, str) else loaded.label
        bar = ExtractionProgress(n / sr, label, enabled=bool(progress))
    try:
        with torch.inference_mode():
            for batch in batch_windows(windows, batch_size):
                length = batch[0][1] - batch[0][0]
                n_keep = frame_count(model, length)
                state["n_keep"] = n_keep
                chunk = np.stack([audio[s:e] for s, e in batch])
                if loaded.do_normalize and causal:  # statistics of the window: no future
                    chunk = chunk - chunk.mean(axis=1, keepdims=True, dtype=np.float64)
                    chunk = chunk / np.sqrt(chunk.var(axis=1, keepdims=True) + NORM_EPS)
                    chunk = chunk.astype(np.float32)
                elif loaded.do_normalize:
                    chunk = (chunk - np.float32(mean)) / np.float32(std)
                inputs = {
                    k: v.to(device=device, dtype=dtype)
                    for k, v in prepare_inputs(model, loaded.processor, chunk, sr).items()
                }
                captured.clear()
                try:
                    if state["conv_only"]:
                        model.feature_extractor(inputs["input_values"])
                    else:
                        model(**inputs)
                except StopForward:
                    pass
                for b, (start, _) in enumerate(batch):
                    offset = start // hop
                    if averager is not None:
                        averager.add(offset, {k: captured[k][b, :n_keep] for k in layers})
                        continue
                    stop = offset + n_keep
                    if stop > next_frame:
                        for name in layers:
                            write(name, next_frame, captured[name][b, next_frame - offset : n_keep])
                        next_frame = stop
                bar.advance_to(batch[-1][1] / sr)
    finally:
        for handle in handles:
            handle.remove()
        bar.close()
    if averager is not None:
        averager.flush(n_frames)
    elif next_frame != n_frames:  # pragma: no cover - guaranteed by plan_causal_windows
        raise RuntimeError(f"causal extraction produced {next_frame} of {n_frames} frames")
    return sr / hop


def extract_features(
    loaded: LoadedModel,
    audio: np.ndarray,
    *,
    layers: Sequence[str],
    window_s: float | None = 10.0,
    stride_s: float = 5.0,
    batch_size: int = 4,
    causal: bool = False,
    progress: bool | str = False,
) -> Features:
    """Compute layer activations over a whole stimulus with overlapping windows, in memory.

    Parameters
    ----------
    loaded : LoadedModel
        Model from :func:`~bids_w2v.features.models.load_model`.
    audio : numpy.ndarray
        1-D waveform at ``loaded.sampling_rate`` (see :func:`bids_w2v.inputs.audio.load_audio`).
    layers : sequence of str
        Layer names from :func:`~bids_w2v.features.layers.available_layers`.
    window_s : float or None, default 10.0
        Window length in seconds; None runs a single pass over the whole stimulus.
    stride_s : float, default 5.0
        Seconds between window starts (rounded to a whole number of model frames); must not
        exceed ``window_s``.
    batch_size : int, default 4
        Windows of equal length processed together.
    causal : bool, default False
        Each frame sees only the past (see :func:`stream_features`).
    progress : bool or str, default False
        Show a progress bar in seconds of audio with the real-time factor.

    Returns
    -------
    Features
        ``(n_frames, dim)`` float32 per layer, where ``n_frames`` is the frame count of one
        pass over the whole stimulus; frames covered by several windows are averaged. For
        stimuli of hours, use :func:`bids_w2v.features.cache.load_or_extract`, which writes the
        frames to disk as they are computed instead of holding every layer in memory.

    Raises
    ------
    AudioError
        If the audio is not 1-D, not finite, or shorter than the model's receptive field.
    InputError
        If a layer is unknown or the window/stride/batch options are invalid.
    """
    layers = list(dict.fromkeys(layers))
    arrays: dict[str, np.ndarray] = {}

    def open_sink(n_frames: int, dims: Mapping[str, int]) -> RowWriter:
        arrays.update({name: np.empty((n_frames, dims[name]), np.float32) for name in layers})

        def write(name: str, start: int, rows: np.ndarray) -> None:
            arrays[name][start : start + rows.shape[0]] = rows

        return write

    frame_rate = stream_features(
        loaded,
        audio,
        open_sink,
        layers=layers,
        window_s=window_s,
        stride_s=stride_s,
        batch_size=batch_size,
        causal=causal,
        progress=progress,
    )
    return Features(layers=arrays, frame_rate=frame_rate)
