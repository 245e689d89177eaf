"""Content-addressed on-disk cache of extracted features.

A cache entry is ``<cache_dir>/<key>.npz`` where the key hashes everything the features depend
on: the audio file's bytes, the model (name, weights hash, random init and seed), the window,
the stride, the layers and the package version. Entries are written atomically, so concurrent
runs sharing a cache never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_w2v import __version__
from bids_w2v.errors import AudioError, InputError
from bids_w2v.features.extract import Features, extract_features
from bids_w2v.features.models import LoadedModel
from bids_w2v.io.atomic import atomic_write
from bids_w2v.io.audio import load_audio

__all__ = [
    "cached_features_path",
    "feature_cache_key",
    "file_sha256",
    "load_features",
    "load_or_extract",
    "save_features",
]

_FRAME_RATE_KEY = "frame_rate"


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


def feature_cache_key(
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
) -> str:
    """Return the cache key of the features of one stimulus.

    Parameters
    ----------
    audio_path : str or path-like
        Stimulus file (its bytes are hashed, not its name).
    loaded : LoadedModel
        The model.
    layers : sequence of str
        Extracted layers (order does not matter).
    window_s : float or None
        Window length in seconds (None for a single pass).
    stride_s : float
        Stride in seconds.

    Returns
    -------
    str
        Hex SHA-256 identifying the features.
    """
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
        "sampling_rate": loaded.sampling_rate,
        "do_normalize": loaded.do_normalize,
        "window_s": None if window_s is None else float(window_s),
        "stride_s": float(stride_s),
        "layers": sorted(layers),
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def save_features(path: str | os.PathLike[str], features: Features) -> None:
    """Write features to an ``.npz`` file atomically.

    Parameters
    ----------
    path : str or path-like
        Destination; a temporary file in the same folder is renamed onto it.
    features : Features
        One array per layer (stored under the layer name) plus ``frame_rate``.
    """
    path = Path(path)
    if _FRAME_RATE_KEY in features.layers:
        raise ValueError(f"a layer cannot be named {_FRAME_RATE_KEY!r}")
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in features.layers.items()}
    atomic_write(
        path,
        lambda tmp: np.savez(tmp, frame_rate=np.float64(features.frame_rate), **arrays),
        suffix=".npz",
    )


def load_features(path: str | os.PathLike[str]) -> Features:
    """Read features written by :func:`save_features`.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` file.

    Returns
    -------
    Features
        Layers in the order they were saved.

    Raises
    ------
    InputError
        If the file is missing, corrupt or not a features file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if _FRAME_RATE_KEY not in data.files:
                raise InputError(
                    f"'{path}' is not a bids-w2v features file (it has no frame_rate). Delete "
                    "it and extract the features again."
                )
            frame_rate = float(data[_FRAME_RATE_KEY])
            layers = {k: data[k] for k in data.files if k != _FRAME_RATE_KEY}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(
            f"The features file '{path}' cannot be read ({exc}). Delete it and extract the "
            "features again."
        ) from exc
    return Features(layers=layers, frame_rate=frame_rate)


def _has_layers(entry: Path, layers: Sequence[str]) -> bool:
    """Whether a cache entry is a readable features file holding every layer (lazy: the
    arrays themselves are not read)."""
    try:
        with np.load(entry, allow_pickle=False) as data:
            return _FRAME_RATE_KEY in data.files and all(name in data.files for name in layers)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def _ensure_cached(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    progress: bool,
) -> tuple[Path, Features | None]:
    """Return the cache entry of a stimulus, extracting it on a miss (with the new features)."""
    key = feature_cache_key(audio_path, loaded, layers=layers, window_s=window_s, stride_s=stride_s)
    entry = Path(cache_dir) / f"{key}.npz"
    if entry.is_file() and _has_layers(entry, layers):
        return entry, None
    audio = load_audio(audio_path, loaded.sampling_rate)
    try:
        features = extract_features(
            loaded, audio, layers=layers, window_s=window_s, stride_s=stride_s, progress=progress
        )
    except AudioError as exc:
        raise AudioError(f"The audio stimulus '{audio_path}' cannot be used: {exc}") from exc
    save_features(entry, features)
    return entry, features


def cached_features_path(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
    progress: bool = False,
) -> Path:
    """Make sure a stimulus' features are cached and return the cache entry's path.

    Same parameters as :func:`load_or_extract`; on a hit nothing but the entry's index is read.

    Returns
    -------
    Path
        ``<cache_dir>/<key>.npz``, readable with :func:`load_features`.
    """
    layers = list(dict.fromkeys(layers))
    settings = {"layers": layers, "window_s": window_s, "stride_s": stride_s, "progress": progress}
    entry, _ = _ensure_cached(cache_dir, audio_path, loaded, **settings)
    return entry


def load_or_extract(
    cache_dir: str | os.PathLike[str],
    audio_path: str | os.PathLike[str],
    loaded: LoadedModel,
    *,
    layers: Sequence[str],
    window_s: float | None,
    stride_s: float,
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
    progress : bool, default False
        Show a progress bar while extracting.

    Returns
    -------
    Features
        The features, with layers in the order given. An unreadable cache entry is replaced.
    """
    layers = list(dict.fromkeys(layers))
    settings = {"layers": layers, "window_s": window_s, "stride_s": stride_s, "progress": progress}
    entry, features = _ensure_cached(cache_dir, audio_path, loaded, **settings)
    if features is None:
        try:
            features = load_features(entry)
        except InputError:  # readable index but damaged data: replace the entry
            entry.unlink(missing_ok=True)
            entry, features = _ensure_cached(cache_dir, audio_path, loaded, **settings)
    return Features({name: features.layers[name] for name in layers}, features.frame_rate)
