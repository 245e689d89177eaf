"""Features of ABX items: a speech model's layers (the BIDS-App's extraction and cache) or a
model-free log-mel baseline.

What the model sees (``model_input``):

- ``"file"`` (default): the whole audio file an item comes from, in one pass of the BIDS-App's
  extraction (windows of ``window_s`` seconds every ``stride_s``; a file shorter than a window
  is one pass), cached by content with :func:`bids_w2v.features.cache.load_or_extract`; the
  item's frames are then cut from the file's frames (:func:`~bids_w2v.abx.items.frame_slice`).
  This is ZeroSpeech's convention, and with Perceptimatic, where each stimulus is its own short
  file, the model sees exactly the stimulus, as in the paper.
- ``"item"``: only the item's span is given to the model (cut from the file, written as a
  content-addressed WAV under ``<cache_dir>/spans/`` and extracted and cached the same way);
  all its frames are used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.abx.items import check_spans, frame_slice
from bids_w2v.errors import AudioError, InputError
from bids_w2v.inputs.audio import load_audio

__all__ = [
    "LOGMEL",
    "ItemLayers",
    "MODEL_INPUTS",
    "audio_files",
    "logmel_features",
    "model_item_features",
]

MODEL_INPUTS = ("file", "item")
#: Name of the model-free baseline (as ``--model``) and of its one layer.
LOGMEL = "logmel"
_LOGMEL_RATE = 100.0
#: Audio file extensions looked for in AUDIO_DIR.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def audio_files(items: pd.DataFrame, audio_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """The audio file of each ``file`` of the item file (``<audio_dir>/<file>.<ext>``).

    Raises
    ------
    InputError
        If a file has no audio, or several.
    """
    audio_dir = Path(audio_dir)
    found: dict[str, Path] = {}
    missing = []
    for name in dict.fromkeys(items["file"]):
        candidates = [audio_dir / f"{name}{suffix}" for suffix in AUDIO_SUFFIXES]
        existing = [c for c in candidates if c.is_file()]
        if len(existing) == 1:
            found[name] = existing[0]
        elif existing:
            raise InputError(
                f"The ABX item file's file '{name}' matches several audio files in "
                f"'{audio_dir}': {[p.name for p in existing]}. Keep one of them."
            )
        else:
            missing.append(name)
    if missing:
        raise InputError(
            f"{len(missing)} file(s) named in the ABX item file have no audio in '{audio_dir}', "
            f"e.g. '{missing[0]}' (looked for {missing[0]}{{{','.join(AUDIO_SUFFIXES)}}}). "
            "Give the folder holding the item file's audio as AUDIO_DIR."
        )
    return found


def logmel_features(items: pd.DataFrame, paths: dict[str, Path]) -> list[np.ndarray]:
    """Log-mel frames of each item (model-free baseline).

    40 mel bands (HTK scale, 0-8 kHz) of 25 ms Hann windows every 10 ms of the 16 kHz audio,
    ``log10`` of the power, computed with ``transformers.audio_utils``; items' frames are cut
    as for a model at 100 frames per second.
    """
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    mel = mel_filter_bank(201, 40, 0.0, 8000.0, 16000)
    window = window_function(400, "hann")
    frames = {}
    for name, path in paths.items():
        audio = load_audio(path, 16000)
        if audio.shape[0] < 400:
            audio = np.pad(audio, (0, 400 - audio.shape[0]))
        spec = spectrogram(
            audio, window, 400, 160, power=2.0, center=False, mel_filters=mel, log_mel="log10"
        )
        frames[name] = np.ascontiguousarray(spec.T, dtype=np.float32)
    return _cut(items, frames, _LOGMEL_RATE, "(log-mel baseline)")


def _cut(
    items: pd.DataFrame, frames: dict[str, np.ndarray], rate: float, where: str
) -> list[np.ndarray]:
    spans = [
        frame_slice(on, off, rate, frames[f].shape[0])
        for f, on, off in zip(items["file"], items["onset"], items["offset"], strict=True)
    ]
    check_spans(items, np.array([s.stop - s.start for s in spans]), where)
    return [np.array(frames[f][s]) for f, s in zip(items["file"], spans, strict=True)]


def model_item_features(
    loaded,
    items: pd.DataFrame,
    paths: dict[str, Path],
    layers: Sequence[str],
    *,
    cache_dir: str | os.PathLike[str],
    model_input: str = "file",
    window_s: float | None = 10.0,
    stride_s: float = 5.0,
    batch_size: int = 4,
) -> ItemLayers:
    """Frames of each item at each layer of a model.

    Parameters
    ----------
    loaded : bids_w2v.features.LoadedModel
        The model (see :func:`bids_w2v.features.load_model`).
    items : pandas.DataFrame
        From :func:`bids_w2v.abx.items.read_items`.
    paths : dict
        ``file -> audio path`` (:func:`audio_files`).
    layers : sequence of str
        Layers to extract.
    cache_dir : path-like
        Feature cache (shared with the BIDS-App's ``--feature-cache`` if wished).
    model_input : {"file", "item"}, default "file"
        What the model sees (see the module's description).
    window_s, stride_s : float
        Extraction windows, as the BIDS-App's ``--window``/``--stride``.
    batch_size : int, default 4
        Windows per forward pass.

    Returns
    -------
    ItemLayers
        ``layer -> list`` of ``(n_frames, dim)`` float32 arrays, in the order of ``items``
        (each layer cut from the cache when accessed).
    """
    from bids_w2v.features.cache import load_or_extract

    if model_input not in MODEL_INPUTS:
        raise InputError(f"--model-input must be one of {MODEL_INPUTS}, got {model_input!r}.")
    options = dict(layers=list(layers), window_s=window_s, stride_s=stride_s)
    options["batch_size"] = batch_size
    if model_input == "file":
        by_file = {
            name: load_or_extract(cache_dir, p, loaded, **options) for name, p in paths.items()
        }
        return ItemLayers(items, by_file, None, f"(model {loaded.label}, frames of the whole file)")
    span_dir = Path(cache_dir) / "spans"
    span_dir.mkdir(parents=True, exist_ok=True)
    audio_cache: dict[str, np.ndarray] = {}
    sr = loaded.sampling_rate
    by_item = []
    for name, onset, offset in zip(items["file"], items["onset"], items["offset"], strict=True):
        if name not in audio_cache:
            audio_cache = {name: load_audio(paths[name], sr)}  # one file held at a time
        span = audio_cache[name][int(round(onset * sr)) : int(round(offset * sr))]
        try:
            by_item.append(
                load_or_extract(span_dir, _span_file(span_dir, span, sr), loaded, **options)
            )
        except AudioError as exc:
            raise AudioError(
                f"The ABX item '{name}' {onset}-{offset} s cannot be given alone to the model "
                f"'{loaded.label}' (--model-input item): {exc} Widen the item or use "
                "--model-input file."
            ) from exc
    return ItemLayers(items, None, by_item, "")


class ItemLayers(Mapping):
    """``layer -> list`` of item frames, cut from the cached features when a layer is asked
    for (one layer in memory at a time)."""

    def __init__(self, items: pd.DataFrame, by_file, by_item, where: str) -> None:
        self.items, self.by_file, self.by_item, self.where = items, by_file, by_item, where
        source = next(iter(by_file.values())) if by_file else by_item[0]
        self.names = list(source.layers)

    def __getitem__(self, layer: str) -> list[np.ndarray]:
        if layer not in self.names:
            raise KeyError(layer)
        if self.by_item is not None:
            return [np.array(f.layers[layer]) for f in self.by_item]
        frames = {name: f.layers[layer] for name, f in self.by_file.items()}
        rate = next(iter(self.by_file.values())).frame_rate
        return _cut(self.items, frames, rate, self.where)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _span_file(folder: Path, span: np.ndarray, sr: int) -> Path:
    """A WAV of an item's span, named by its content (written once)."""
    import soundfile

    digest = hashlib.sha256(span.tobytes() + str(sr).encode()).hexdigest()[:32]
    path = folder / f"{digest}.wav"
    if not path.exists():
        tmp = path.with_suffix(".tmp.wav")
        soundfile.write(tmp, span, sr, subtype="FLOAT")
        os.replace(tmp, path)
    return path
