"""The ABX evaluation of models and layers, from the item file to the outputs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bids_w2v.abx.features import LOGMEL, audio_files, logmel_features, model_item_features
from bids_w2v.abx.items import read_items
from bids_w2v.abx.score import MODES, AbxResult, score_features
from bids_w2v.config import FeatureSettings, default

__all__ = ["AbxSettings", "LayerScore", "run_abx", "score_model"]


@dataclass(frozen=True)
class AbxSettings:
    """How items are extracted and scored (see ``bids-w2v-abx --help``)."""

    modes: tuple[str, ...] = MODES
    distances: tuple[str, ...] = ("cosine", "angular")
    model_input: str = "file"
    window_s: float | None = default(FeatureSettings, "window_s")
    stride_s: float = default(FeatureSettings, "stride_s")
    batch_size: int = default(FeatureSettings, "batch_size")
    device: str = "cpu"
    dtype: str = default(FeatureSettings, "dtype")
    seed: int = 0
    allow_download: bool = False
    allow_pickle: bool = False
    n_boot: int = 1000


@dataclass
class LayerScore:
    """ABX results of one layer of one model."""

    model: str
    label: str
    layer: str
    depth: int
    results: dict[tuple[str, str], AbxResult]
    model_info: dict = field(default_factory=dict)


def score_model(
    name: str,
    random_init: bool,
    items: pd.DataFrame,
    paths: dict[str, Path],
    layers: str | None,
    settings: AbxSettings,
    cache_dir: str | os.PathLike[str],
) -> list[LayerScore]:
    """Score every selected layer of one model (``"logmel"``: the model-free baseline)."""
    score = dict(modes=settings.modes, distances=settings.distances)
    if name == LOGMEL:
        feats = logmel_features(items, paths)
        results = score_features(feats, items, device=_device(settings), **score)
        info = {"model": LOGMEL, "description": "log-mel baseline (40 bands, 25/10 ms)"}
        return [LayerScore(LOGMEL, LOGMEL, LOGMEL, 0, results, info)]
    from bids_w2v.features import available_layers, load_model, parse_layers

    loaded = load_model(
        name,
        random_init=random_init,
        seed=settings.seed,
        allow_download=settings.allow_download,
        allow_pickle=settings.allow_pickle,
        device=settings.device,
        dtype=settings.dtype,
    )
    available = available_layers(loaded.model)
    selected = parse_layers(layers, available)
    item_layers = model_item_features(
        loaded,
        items,
        paths,
        selected,
        cache_dir=cache_dir,
        model_input=settings.model_input,
        window_s=settings.window_s,
        stride_s=settings.stride_s,
        batch_size=settings.batch_size,
    )
    info = {
        "model": loaded.name,
        "random_init": loaded.random_init,
        "seed": loaded.seed,
        "weights_sha256": loaded.weights_sha256,
        "model_type": loaded.model_type,
        "dtype": loaded.dtype,
    }
    out = []
    for layer in selected:
        results = score_features(item_layers[layer], items, device=loaded.device, **score)
        out.append(LayerScore(name, loaded.label, layer, available.index(layer), results, info))
    return out


def _device(settings: AbxSettings) -> str:
    from bids_w2v.features import resolve_device

    return resolve_device(settings.device)


def run_abx(
    items_path: str | os.PathLike[str],
    audio_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    models: Sequence[tuple[str, bool]],
    *,
    layers: str | None = None,
    settings: AbxSettings = AbxSettings(),
    cache_dir: str | os.PathLike[str] | None = None,
    human_path: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Score models' layers on an ABX item file and write the outputs.

    Parameters
    ----------
    items_path : path-like
        ZeroSpeech item file.
    audio_dir : path-like
        Folder of the item file's audio (``<file>.wav``...).
    output_dir : path-like
        Where the TSVs, sidecars, figure and report go.
    models : sequence of (str, bool)
        Model (folder, hub id or ``"logmel"``) and whether its weights are random.
    layers : str, optional
        Layer selection (:func:`bids_w2v.features.parse_layers`); None for all.
    settings : AbxSettings
        Extraction and scoring settings.
    cache_dir : path-like, optional
        Feature cache (default ``OUTPUT_DIR/feature_cache``).
    human_path : path-like, optional
        Human results TSV (:func:`bids_w2v.abx.human.read_human_results`).

    Returns
    -------
    list of Path
        Files written.
    """
    from bids_w2v.abx.human import read_human_results
    from bids_w2v.abx.report import write_outputs

    items = read_items(items_path)
    paths = audio_files(items, audio_dir)
    human = read_human_results(human_path) if human_path is not None else None
    output_dir = Path(output_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else output_dir / "feature_cache"
    scores: list[LayerScore] = []
    for name, random_init in models:
        scores.extend(score_model(name, random_init, items, paths, layers, settings, cache_dir))
    context = {
        "item_file": str(Path(items_path).resolve()),
        "audio_dir": str(Path(audio_dir).resolve()),
        "n_items": int(len(items)),
        "n_speakers": int(items["speaker"].nunique()),
        "n_phones": int(items["phone"].nunique()),
        "n_contexts": int(items["context"].nunique()),
    }
    return write_outputs(output_dir, scores, settings, context, human)
