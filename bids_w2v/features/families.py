"""What differs between the supported transformers audio encoders, in one place.

Two kinds of encoders are supported:

- **waveform** encoders (``wav2vec2``, ``hubert``, ``wavlm``, ``data2vec-audio``,
  ``wav2vec2-conformer``) read the normalised waveform through a convolutional front end
  (``model.feature_extractor.conv_layers``) followed by transformer or conformer blocks
  (``model.encoder.layers``);
- **spectral** encoders read the output of their own transformers feature extractor:
  Whisper's encoder (``whisper``: 80 log-mel bands of 25 ms every 10 ms, two convolutions
  ``conv1``/``conv2``, then the blocks ``layers``) and w2v-BERT 2.0 (``wav2vec2-bert``:
  80 Kaldi filter banks of 25 ms every 10 ms, two stacked frames per input vector, conformer
  blocks ``encoder.layers``, no convolutional front end).

Layer names are the same for every family: ``conv<i>`` for the blocks of a convolutional front
end (when there is one, activation included, average-pooled to the encoder frame rate), then
``transformer<i>`` for the encoder blocks, ``transformer<i>`` being exactly
``hidden_states[i + 1]`` of transformers' ``output_hidden_states``. For Whisper that includes,
on the last block, the encoder's final LayerNorm, as transformers reports it. Every family runs
at 50 frames per second on 16 kHz audio (hop of 320 samples); frame ``j`` starts at
``j / 50`` s.

Whisper's encoder only accepts its fixed context (30 s for the released models,
``2 * max_source_positions`` log-mel frames): each analysis window (10 s by default) is
padded with silence at its end to the full context by ``WhisperFeatureExtractor``, which also
computes the log-mel normalisation over the padded input as Whisper always does, and only the
encoder frames of the window's own audio are kept (``window_samples // 320``: the first 500 of
1500 for a 10 s window); windows longer than the context are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ACOUSTIC_TYPES",
    "SPECTRAL_TYPES",
    "SUPPORTED_TYPES",
    "WAVEFORM_TYPES",
    "context_samples",
    "family_hop",
    "family_layers",
    "family_receptive_field",
    "frame_count",
    "is_spectral",
    "layer_modules",
    "load_processor",
    "prepare_inputs",
]

WAVEFORM_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer")
SPECTRAL_TYPES = ("whisper", "wav2vec2-bert")
SUPPORTED_TYPES = WAVEFORM_TYPES + SPECTRAL_TYPES
#: Model-free acoustic baselines (``--model mel``, ``--model envelope``): one layer each.
ACOUSTIC_TYPES = ("mel", "envelope")
#: Feature-extractor framing of both spectral families at 16 kHz: 25 ms windows every 10 ms.
FFT_WINDOW, FFT_HOP = 400, 160


def _type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", ""))


def is_spectral(model: Any) -> bool:
    """Whether the encoder reads its own feature extractor's frames instead of the waveform."""
    return _type(model) in SPECTRAL_TYPES


def family_layers(model: nn.Module) -> list[str]:
    """Layer names of an encoder in depth order (see the module docstring)."""
    kind = _type(model)
    if kind in ACOUSTIC_TYPES:
        return [kind]
    if kind == "whisper":
        return ["conv0", "conv1"] + [f"transformer{i}" for i in range(len(model.layers))]
    if kind == "wav2vec2-bert":
        return [f"transformer{i}" for i in range(len(model.encoder.layers))]
    n_conv = len(model.feature_extractor.conv_layers)
    n_transformer = len(model.encoder.layers)
    return [f"conv{i}" for i in range(n_conv)] + [f"transformer{i}" for i in range(n_transformer)]


def family_hop(model: nn.Module) -> int:
    """Samples between consecutive encoder frames (320 at 16 kHz for every family)."""
    if is_spectral(model):
        return 2 * FFT_HOP  # Whisper's conv2 stride 2; w2v-BERT stacks two frames
    return int(np.prod([int(s) for s in model.config.conv_stride]))


def family_receptive_field(model: nn.Module) -> int:
    """Fewest samples that give one encoder frame (its convolutional receptive field)."""
    kind = _type(model)
    if kind == "whisper":
        return FFT_WINDOW
    if kind == "wav2vec2-bert":
        return FFT_WINDOW + FFT_HOP  # two stacked 25 ms frames
    field, jump = 1, 1
    for kernel, stride in zip(model.config.conv_kernel, model.config.conv_stride, strict=True):
        field += (int(kernel) - 1) * jump
        jump *= int(stride)
    return field


def frame_count(model: nn.Module, n_samples: int) -> int:
    """Encoder frames of ``n_samples`` of audio."""
    kind = _type(model)
    if kind == "whisper":
        return int(n_samples) // (2 * FFT_HOP)
    if kind == "wav2vec2-bert":
        if n_samples < FFT_WINDOW:
            return 0
        return ((int(n_samples) - FFT_WINDOW) // FFT_HOP + 1) // 2
    return int(model._get_feat_extract_output_lengths(int(n_samples)))


def context_samples(model: nn.Module) -> int | None:
    """Longest input the encoder accepts (Whisper's fixed context), None when unbounded."""
    if _type(model) == "whisper":
        return int(model.config.max_source_positions) * 2 * FFT_HOP
    return None


def layer_modules(model: nn.Module, name: str, hop: int) -> tuple[nn.Module, int | None, Any]:
    """The module whose output is layer ``name``, the pooling of a conv layer, its activation.

    Returns
    -------
    tuple
        ``(module, pool, activation)``: ``pool`` is None for encoder blocks (``(batch, frames,
        dim)`` outputs), else the average pooling that brings the conv output ``(batch,
        channels, time)`` to the frame rate; ``activation`` is applied to the module's output
        first (Whisper's GELU, which transformers applies outside the conv modules) or None.
    """
    from torch.nn import functional as F

    kind = _type(model)
    index = int(name.removeprefix("conv").removeprefix("transformer"))
    if kind == "whisper":
        if name.startswith("conv"):
            return (model.conv1, 2, F.gelu) if index == 0 else (model.conv2, 1, F.gelu)
        if index == len(model.layers) - 1:
            return model.layer_norm, None, None  # transformers' last hidden state
        return model.layers[index], None, None
    if kind == "wav2vec2-bert":
        return model.encoder.layers[index], None, None
    if name.startswith("conv"):
        strides = [int(s) for s in model.config.conv_stride]
        pool = hop // int(np.prod(strides[: index + 1]))
        return model.feature_extractor.conv_layers[index], pool, None
    return model.encoder.layers[index], None, None


def prepare_inputs(model: nn.Module, processor: Any, chunk: np.ndarray, sampling_rate: int) -> dict:
    """Keyword inputs of the encoder's forward pass for a batch of equal-length windows.

    Waveform encoders get the (already normalised) waveform as ``input_values``; spectral
    encoders get ``input_features`` from their transformers feature extractor, one window at a
    time as transformers would compute them (Whisper's padded to its context).
    """
    import torch

    if not is_spectral(model):
        return {"input_values": torch.from_numpy(chunk)}
    features = processor(list(chunk), sampling_rate=sampling_rate, return_tensors="np")
    return {"input_features": torch.from_numpy(np.asarray(features["input_features"]))}


def load_processor(model: nn.Module, folder: Path | None, name: str) -> Any:
    """The transformers feature extractor of a spectral encoder (None for the others).

    Read from the model folder's ``preprocessor_config.json`` (JSON only, offline) when there
    is one, else built with transformers' defaults for the family (those of the released
    models; Whisper's context taken from the configuration). Settings bids-w2v cannot align
    to 50 frames per second at 16 kHz are refused.

    Raises
    ------
    ModelError
        If the feature extractor cannot be read or does not frame 16 kHz audio every 10 ms.
    """
    kind = _type(model)
    if kind not in SPECTRAL_TYPES:
        return None
    from transformers import SeamlessM4TFeatureExtractor, WhisperFeatureExtractor

    from bids_w2v.errors import ModelError

    cls = WhisperFeatureExtractor if kind == "whisper" else SeamlessM4TFeatureExtractor
    path = None if folder is None else folder / "preprocessor_config.json"
    try:
        if path is not None and path.is_file():
            processor = cls.from_pretrained(str(folder), local_files_only=True)
        elif kind == "whisper":
            chunk = int(model.config.max_source_positions) * 2 * FFT_HOP // 16000
            processor = cls(feature_size=int(model.config.num_mel_bins), chunk_length=chunk)
        else:
            processor = cls()
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"The feature extractor of the model '{name}' ('{path}') cannot be read ({exc}). "
            "Save it with `feature_extractor.save_pretrained(folder)` or remove the file to use "
            "the family's defaults."
        ) from exc
    if kind == "whisper":
        ok = (processor.hop_length, processor.n_fft) == (FFT_HOP, FFT_WINDOW) and int(
            processor.n_samples
        ) == context_samples(model)
    else:
        ok = int(processor.stride) == 2 and int(processor.feature_size) * 2 == int(
            model.config.feature_projection_input_dim
        )
    if not ok or int(processor.sampling_rate) != 16000:
        raise ModelError(
            f"The feature extractor of the model '{name}' ({type(processor).__name__}) does not "
            "frame 16 kHz audio in 25 ms windows every 10 ms matching the encoder's input (and, "
            "for Whisper, its context), which bids-w2v needs to place frames at 50 per second. "
            "Use the model's own preprocessor_config.json."
        )
    return processor
