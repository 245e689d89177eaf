"""Speech-model features: model loading, layer selection, windowed extraction and caching.

The public names are imported lazily, so importing a submodule that does not need torch (or
``bids_w2v.features`` itself) stays cheap until a model-related name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bids_w2v.features.cache import (
        cached_features_path,
        feature_cache_key,
        file_sha256,
        load_or_extract,
    )
    from bids_w2v.features.extract import Features, extract_features, stream_features
    from bids_w2v.features.layers import (
        available_layers,
        describe_layers,
        layer_index,
        parse_layers,
    )
    from bids_w2v.features.models import (
        LoadedModel,
        load_model,
        model_label,
        resolve_device,
        spec_label,
        weights_sha256,
    )
    from bids_w2v.features.storage import load_features, save_features
    from bids_w2v.features.windows import (
        model_hop,
        plan_causal_windows,
        plan_windows,
        receptive_field,
    )

__all__ = [
    "Features",
    "LoadedModel",
    "available_layers",
    "cached_features_path",
    "describe_layers",
    "extract_features",
    "feature_cache_key",
    "file_sha256",
    "layer_index",
    "load_features",
    "load_model",
    "load_or_extract",
    "model_hop",
    "model_label",
    "parse_layers",
    "plan_causal_windows",
    "plan_windows",
    "receptive_field",
    "resolve_device",
    "save_features",
    "spec_label",
    "stream_features",
    "weights_sha256",
]

_MODULE_OF = {
    **dict.fromkeys(
        ["cached_features_path", "feature_cache_key", "file_sha256", "load_or_extract"], "cache"
    ),
    **dict.fromkeys(["Features", "extract_features", "stream_features"], "extract"),
    **dict.fromkeys(
        ["available_layers", "describe_layers", "layer_index", "parse_layers"], "layers"
    ),
    **dict.fromkeys(
        [
            "LoadedModel",
            "load_model",
            "model_label",
            "resolve_device",
            "spec_label",
            "weights_sha256",
        ],
        "models",
    ),
    **dict.fromkeys(["load_features", "save_features"], "storage"),
    **dict.fromkeys(
        ["model_hop", "plan_causal_windows", "plan_windows", "receptive_field"], "windows"
    ),
}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
