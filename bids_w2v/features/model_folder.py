"""A speech model's files before transformers loads them: where they are and whether they are safe.

A model is a local folder written by ``save_pretrained`` or a snapshot in the Hugging Face hub
cache (fetched only when downloads are allowed). Its ``config.json`` is refused when it declares
custom code (``auto_map``), a folder whose only weights are pickle checkpoints is refused unless
explicitly allowed, and the built model must have the structure of a wav2vec2-family encoder
(convolutional front end followed by transformer blocks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bids_w2v.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "PICKLE_PATTERNS",
    "build_config",
    "check_structure",
    "check_weights",
    "hub_cache_dir",
    "looks_like_path",
    "read_config",
    "read_preprocessing",
    "resolve_hub_folder",
]

#: Checkpoint files that are unpickled when loaded (refused unless ``allow_pickle``).
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def hub_cache_dir() -> str | None:
    """The hub cache given by the environment now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a folder (not a hub id): relative/absolute or existing."""
    return (
        name.startswith((".", "~", "/", "\\"))
        or name.count("/") > 1
        or "\\" in name
        or Path(name).exists()
    )


def resolve_hub_folder(repo_id: str, allow_download: bool, weights: bool) -> Path:
    """Return the local snapshot folder of a hub model (downloading only if allowed)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors"] if weights else ["*.json"]
    try:
        folder = snapshot_download(
            repo_id,
            cache_dir=hub_cache_dir(),
            local_files_only=not allow_download,
            allow_patterns=patterns,
        )
    except HFValidationError as exc:
        raise ModelError(
            f"'{repo_id}' is neither an existing model folder nor a valid Hugging Face hub id "
            f"({exc}). Give the folder written by `save_pretrained` or an id such as "
            "'facebook/wav2vec2-base'."
        ) from exc
    except LocalEntryNotFoundError as exc:
        where = hub_cache_dir() or "the default cache (~/.cache/huggingface/hub)"
        raise ModelError(
            f"The model '{repo_id}' is not in the Hugging Face cache ({where}) and downloads are "
            "disabled. On a machine with internet access run `huggingface-cli download "
            f"{repo_id} --include '*.json' '*.safetensors'` (or `hf download ...`), then copy or "
            "mount that cache here and set HF_HOME to its parent folder; alternatively pass a "
            "local folder written by `save_pretrained`, or allow downloads explicitly."
        ) from exc
    except Exception as exc:  # network, authentication, missing repository ...
        raise ModelError(
            f"The model '{repo_id}' could not be fetched from the Hugging Face hub ({exc}). Check "
            "the id and your network access, or pre-download it with `huggingface-cli download "
            f"{repo_id}` and set HF_HOME."
        ) from exc
    return Path(folder)


def read_config(folder: Path, name: str) -> dict[str, Any]:
    """Read ``config.json`` of a model folder, refusing configurations that declare custom code."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(
            f"The model folder '{folder}' (for '{name}') has no config.json. Give a folder "
            "written by `model.save_pretrained(folder, safe_serialization=True)` of a "
            "transformers speech encoder (wav2vec2, HuBERT, WavLM, data2vec-audio)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"The model configuration '{config_path}' cannot be read as JSON ({exc}). Re-create "
            "it with `save_pretrained`."
        ) from exc
    if not isinstance(config, dict):
        raise ModelError(f"The model configuration '{config_path}' is not a JSON object.")
    if "auto_map" in config:
        raise ModelError(
            f"The model configuration '{config_path}' declares custom code (`auto_map`), which "
            "bids-w2v refuses to execute (trust_remote_code is always off). Use a model "
            "implemented in transformers itself (wav2vec2, hubert, wavlm, data2vec-audio), or "
            "remove `auto_map` if the model does not actually need the custom code."
        )
    return config


def check_weights(folder: Path, name: str, allow_pickle: bool = False) -> bool:
    """Check the folder has weights bids-w2v may read; return True for safetensors."""
    if any(folder.glob("*.safetensors")):
        return True
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
    if pickles and allow_pickle:
        return False
    if pickles:
        raise ModelError(
            f"The model '{name}' (folder '{folder}') only has pickle checkpoints "
            f"({', '.join(pickles)}), which can execute arbitrary code when loaded; bids-w2v only "
            "reads *.safetensors weights. If you trust the file, convert it once with `python -c "
            "\"from transformers import AutoModel; m = AutoModel.from_pretrained('<folder>'); "
            "m.save_pretrained('<new folder>', safe_serialization=True)\"` and pass the new "
            "folder, or pass --allow-pickle to read it with torch's weights-only loader."
        )
    raise ModelError(
        f"The model '{name}' (folder '{folder}') contains no weights (*.safetensors). Save the "
        "model with `save_pretrained(folder, safe_serialization=True)`, or use --random-init to "
        "study the untrained architecture."
    )


def read_preprocessing(folder: Path | None) -> tuple[int, bool]:
    """Sampling rate and ``do_normalize`` of ``preprocessor_config.json`` (16 kHz, True if none)."""
    path = folder / "preprocessor_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return 16000, True
    try:
        prep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"'{path}' cannot be read as JSON ({exc}).") from exc
    return int(prep.get("sampling_rate", 16000)), bool(prep.get("do_normalize", True))


def build_config(config_dict: dict[str, Any], source: str) -> Any:
    """Build the transformers configuration object of ``config_dict`` (``source`` names it)."""
    from transformers import CONFIG_MAPPING

    model_type = config_dict.get("model_type")
    try:
        config_class = CONFIG_MAPPING[model_type]
        return config_class.from_dict(config_dict)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"The model configuration from '{source}' has model_type {model_type!r}, which this "
            f"version of transformers cannot build ({exc!r}). Supported encoders: wav2vec2, "
            "hubert, wavlm, data2vec-audio, wav2vec2-conformer, whisper, wav2vec2-bert."
        ) from exc


def check_structure(model: nn.Module, name: str) -> None:
    """Check ``model`` has the structure of a supported encoder family (layers, geometry)."""
    kind = str(getattr(model.config, "model_type", ""))
    if kind == "whisper":
        ok = all(hasattr(model, a) for a in ("conv1", "conv2", "layers", "layer_norm"))
    elif kind == "wav2vec2-bert":
        ok = hasattr(model, "encoder") and hasattr(model.encoder, "layers")
    else:
        ok = (
            hasattr(model, "feature_extractor")
            and hasattr(model.feature_extractor, "conv_layers")
            and hasattr(model, "encoder")
            and hasattr(model.encoder, "layers")
            and hasattr(model, "_get_feat_extract_output_lengths")
            and hasattr(model.config, "conv_stride")
        )
    if not ok:
        raise ModelError(
            f"The model '{name}' ({type(model).__name__}) is not a supported speech encoder: "
            "bids-w2v reads wav2vec2, HuBERT, WavLM, data2vec-audio, wav2vec2-conformer (a "
            "convolutional waveform front end followed by transformer blocks), Whisper's encoder "
            "and w2v-BERT 2.0 (wav2vec2-bert)."
        )
