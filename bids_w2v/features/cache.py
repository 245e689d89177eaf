"""Content-addressed on-disk cache of extracted features, read back as memory maps.

A cache entry is a folder ``<cache_dir>/<key>/`` holding one ``<layer>.npy`` (float32,
``n_frames x dim``) per layer and ``features.json`` (frame rate, frame count, layer widths and
the parameters hashed into the key). The key hashes everything the features depend on: the
audio file's bytes, the model (name, weights hash, random init and seed, precision, and the
feature extractor settings of Whisper and w2v-BERT), the window,
the stride, causal mode, the layers and the package version.

Frames are written to the ``.npy`` files as soon as they are final, into a temporary folder that
is renamed onto the entry when complete (:mod:`bids_w2v.features.storage`), so memory stays
flat for long stimuli and a reader never sees a half-written entry. Concurrent jobs sharing a
cache take a lock per key (``<cache_dir>/.locks/<key>.lock``, ``fcntl.flock``): the first
extracts, the others wait and then read its entry; should two writers still race, the first
rename wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.errors import AudioError, InputError
from bids_w2v.features.extract import Features, stream_features
from bids_w2v.features.models import LoadedModel
from bids_w2v.features.storage import (
    LazyLayers,
    has_layers,
    load_features,
    save_features,
    write_folder,
)
from bids_w2v.inputs.audio import load_audio

__all__ = [
    "cached_features_path",
    "feature_cache_key",
    "file_sha256",
    "load_features",
    "load_or_extract",
    "save_features",
]

_FORMAT = 2  # entry layout version, part of the key


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes.

    Parameters
    ----------
    path : str or path-like
        File to hash.
    chunk_size : int, default 1 MiB
        Bytes read at a time.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _key_payload(
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool,
) -> dict:
    try:
        audio_hash = file_sha256(audio_path)
    except OSError as exc:
        raise AudioError(f"The audio stimulus '{audio_path}' cannot be read ({exc}).") from exc
    payload = {
        "audio_sha256": audio_hash,
        "model": loaded.name,
        "weights_sha256": loaded.weights_sha256,
        "random_init": loaded.random_init,
        "seed": loaded.seed,
        "dtype": loaded.dtype,
        "sampling_rate": loaded.sampling_rate,
        "do_normalize": loaded.do_normalize,
        "window_s": None if window_s is None else float(window_s),
        "stride_s": float(stride_s),
        "causal": bool(causal),
        "layers": sorted(layers),
        "version": __version__,
        "format": _FORMAT,
    }
    if loaded.processor is not None:  # a spectral encoder's feature extractor settings
        payload["processor"] = json.loads(loaded.processor.to_json_string())
    return payload


def feature_cache_key(
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
) -> str:
    """Return the cache key of the features of one stimulus.

    Parameters
    ----------
    audio_path : str or path-like
        Stimulus file (its bytes are hashed, not its name).
    loaded : LoadedModel
        The model (its name, weights hash, random init, seed and dtype enter the key; the
        device does not).
    layers : sequence of str
        Extracted layers (order does not matter).
    window_s : float or None
        Window length in seconds (None for a single pass).
    stride_s : float
        Stride in seconds.
    causal : bool, default False
        Causal extraction.

    Returns
    -------
    str
        Hex SHA-256 identifying the features.
    """
    payload = _key_payload(
        audio_path, loaded, layers=layers, window_s=window_s, stride_s=stride_s, causal=causal
    )
    return _hash(payload)


def _hash(payload: dict) -> str:
    """Hex SHA-256 of a key payload (canonical JSON)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _locked(cache_dir: Path, key: str) -> Iterator[None]:
    """Exclusive lock of one cache key among processes (released when the block ends)."""
    locks = cache_dir / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _discard(entry: Path) -> None:
    """Remove a damaged entry: renamed away first, so no reader sees it half-deleted."""
    trash = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".old", dir=entry.parent))
    try:
        os.replace(entry, trash / "entry")
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)


def _ensure_cached(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool,
    batch_size: int,
    progress: bool | str,
    replace: bool = False,
) -> Path:
    """Return the cache entry of a stimulus, extracting it on a miss."""
    options = {"layers": layers, "window_s": window_s, "stride_s": stride_s, "causal": causal}
    payload = _key_payload(audio_path, loaded, **options)
    key = _hash(payload)
    cache_dir = Path(cache_dir)
    entry = cache_dir / key
    if not replace and has_layers(entry, layers):
        return entry
    with _locked(cache_dir, key):
        if not replace and has_layers(entry, layers):  # written by a job we waited for
            return entry
        if entry.exists():
            _discard(entry)
        audio = load_audio(audio_path, loaded.sampling_rate)
        label = f"{loaded.label} {Path(audio_path).name}" if progress else False
        if hasattr(progress, "advance_to"):  # a part of the caller's progress
            label = progress

        def fill(open_sink) -> float:
            try:
                return stream_features(
                    loaded, audio, open_sink, batch_size=batch_size, progress=label, **options
                )
            except AudioError as exc:
                raise AudioError(
                    f"The audio stimulus '{audio_path}' cannot be used: {exc}"
                ) from exc

        write_folder(entry, fill, extra=payload)
    return entry


def cached_features_path(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
    batch_size: int = 4,
    progress: bool = False,
) -> Path:
    """Make sure a stimulus' features are cached and return the cache entry's folder.

    Same parameters as :func:`load_or_extract`; on a hit only the entry's index and the layer
    files' headers are read.

    Returns
    -------
    Path
        ``<cache_dir>/<key>/``, readable with :func:`load_features`.
    """
    layers = list(dict.fromkeys(layers))
    return _ensure_cached(
        cache_dir,
        audio_path,
        loaded,
        layers=layers,
        window_s=window_s,
        stride_s=stride_s,
        causal=causal,
        batch_size=batch_size,
        progress=progress,
    )


def load_or_extract(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    causal: bool = False,
    batch_size: int = 4,
    progress: bool = False,
) -> Features:
    """Return cached features of a stimulus, extracting and caching them on a miss.

    Parameters
    ----------
    cache_dir : str or path-like
        Cache folder (created if needed).
    audio_path : str or path-like
        Stimulus file.
    loaded : LoadedModel
        The model.
    layers : sequence of str
        Layers to extract.
    window_s : float or None
        Window length in seconds (None for a single pass).
    stride_s : float
        Stride in seconds.
    causal : bool, default False
        Causal extraction (see :func:`bids_w2v.features.extract.stream_features`).
    batch_size : int, default 4
        Windows processed together (does not change the features, so not part of the key).
    progress : bool, default False
        Show a progress bar while extracting.

    Returns
    -------
    Features
        The features, with layers in the order given, each a read-only memory map of the
        cache entry. An unreadable cache entry is replaced.
    """
    layers = list(dict.fromkeys(layers))
    settings = {
        "layers": layers,
        "window_s": window_s,
        "stride_s": stride_s,
        "causal": causal,
        "batch_size": batch_size,
        "progress": progress,
    }
    entry = _ensure_cached(cache_dir, audio_path, loaded, **settings)
    try:
        features = load_features(entry)
    except InputError:  # damaged after the check: replace the entry
        entry = _ensure_cached(cache_dir, audio_path, loaded, replace=True, **settings)
        features = load_features(entry)
    return Features(LazyLayers(entry, layers), features.frame_rate)
