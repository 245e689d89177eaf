"""Loading self-supervised speech encoders (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) safely.

Models come from a local folder written by ``save_pretrained`` or from the Hugging Face hub cache.
Only ``*.safetensors`` weights are read (pickle checkpoints only with ``allow_pickle``, and
then through torch's weights-only unpickler) and remote code is never executed. Nothing is
downloaded unless ``allow_download=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from pickle import UnpicklingError
from typing import TYPE_CHECKING, Any

from bids_w2v.errors import InputError, ModelError

if TYPE_CHECKING:  # torch is imported when a model is loaded, not to compute a label
    import torch
    from torch import nn

__all__ = [
    "DTYPES",
    "SHIPPED_CONFIGS",
    "LoadedModel",
    "load_model",
    "model_label",
    "resolve_device",
    "spec_label",
    "weights_sha256",
]

#: Hub ids (and aliases) whose configuration ships with the package, for offline random init.
SHIPPED_CONFIGS = {
    "facebook/wav2vec2-base": "wav2vec2-base.json",
    "wav2vec2-base": "wav2vec2-base.json",
    "facebook/wav2vec2-large": "wav2vec2-large.json",
    "wav2vec2-large": "wav2vec2-large.json",
}
_ALIASES = {"wav2vec2-base": "facebook/wav2vec2-base", "wav2vec2-large": "facebook/wav2vec2-large"}
#: Precisions the encoder can run in (``float16`` only on a GPU).
DTYPES = ("float32", "bfloat16", "float16")
_PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
_IGNORED_MISSING = ("masked_spec_embed",)


@dataclass(frozen=True)
class LoadedModel:
    """A speech encoder ready for feature extraction, with what identifies it.

    Attributes
    ----------
    model : torch.nn.Module
        Base encoder (``Wav2Vec2Model``, ``HubertModel``, ...) in eval mode, gradients off.
    name : str
        The model as given by the user (folder or hub id).
    label : str
        BIDS-safe alphanumeric label, e.g. ``"wav2vec2base"``; ``"Random"`` is appended for
        randomly initialised models.
    random_init : bool
        Whether the weights are a random initialisation instead of the trained ones.
    seed : int or None
        Seed of the random initialisation (None for trained weights).
    sampling_rate : int
        Audio sampling rate the model expects (Hz).
    do_normalize : bool
        Whether the audio must be normalised to zero mean and unit variance.
    model_type : str
        ``config.model_type`` (``"wav2vec2"``, ``"hubert"``, ``"wavlm"``, ``"data2vec-audio"``).
    weights_sha256 : str
        SHA-256 of all ``state_dict`` tensors in float32, see :func:`weights_sha256`.
    dtype : str
        Precision the encoder runs in (``"float32"``, ``"bfloat16"`` or ``"float16"``).
    device : str
        Torch device the encoder is on (``"cpu"``, ``"cuda"``...).
    """

    model: nn.Module
    name: str
    label: str
    random_init: bool
    seed: int | None
    sampling_rate: int
    do_normalize: bool
    model_type: str
    weights_sha256: str
    dtype: str = "float32"
    device: str = "cpu"


def model_label(name: str, random_init: bool = False) -> str:
    """Return the BIDS-safe alphanumeric label of a model.

    Parameters
    ----------
    name : str
        Hub id or folder; only its last path component is used.
    random_init : bool, default False
        Append ``"Random"`` to the label.

    Returns
    -------
    str
        For example ``"wav2vec2base"`` for ``facebook/wav2vec2-base``.
    """
    last = re.split(r"[\\/]", name.rstrip("/\\"))[-1] if name.strip("/\\") else ""
    label = re.sub(r"[^A-Za-z0-9]", "", last) or "model"
    return label + ("Random" if random_init else "")


def spec_label(name: str, random_init: bool = False) -> str:
    """Return the label :func:`load_model` gives a model, without loading it.

    Parameters
    ----------
    name : str
        Folder or hub id as given by the user (an existing folder is labelled by its resolved
        name, so ``.`` or ``model/`` work).
    random_init : bool, default False
        Whether the weights are randomly initialised (``"Random"`` is appended).

    Returns
    -------
    str
        The BIDS-safe label used in ``desc-<label><Layer>``.
    """
    path = Path(str(name)).expanduser()
    source = path.resolve().name if path.is_dir() else str(name)
    return model_label(source, random_init)


def resolve_device(device: str) -> str:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable torch device name.

    Parameters
    ----------
    device : str
        ``"auto"`` picks ``"cuda"`` when a GPU is visible to torch, else ``"cpu"``.

    Returns
    -------
    str
        The device name.

    Raises
    ------
    InputError
        If the name is not a device, or CUDA is requested but not available.
    """
    import torch

    text = str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise InputError(
            f"Unknown device {device!r} for the speech model; use 'auto', 'cpu', 'cuda' or "
            "'cuda:N'."
        )
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"The device {device!r} was requested but torch sees no CUDA GPU here. Use "
            "--device cpu (or auto), or run where a GPU and a CUDA build of torch are available."
        )
    return text


def _torch_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise InputError(f"Unknown dtype {dtype!r} for the speech model; use one of {DTYPES}.")
    if dtype == "float16" and not device.startswith("cuda"):
        raise InputError(
            "--dtype float16 needs a CUDA GPU: half-precision convolutions are slow or missing "
            f"on the CPU (device {device!r}). Use float32, or bfloat16 which also runs on CPU."
        )
    return getattr(torch, dtype)


def weights_sha256(model: nn.Module) -> str:
    """Hash every tensor of a model's ``state_dict`` in sorted-key order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    str
        Hex SHA-256 over each key, dtype, shape and raw tensor bytes.
    """
    import torch

    digest = hashlib.sha256()
    state = model.state_dict()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _hub_cache_dir() -> str | None:
    """The hub cache given by the environment now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "~", "/", "\\"))
        or name.count("/") > 1
        or "\\" in name
        or Path(name).exists()
    )


def _resolve_hub_folder(repo_id: str, allow_download: bool, weights: bool) -> Path:
    """Return the local snapshot folder of a hub model (downloading only if allowed)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors"] if weights else ["*.json"]
    try:
        folder = snapshot_download(
            repo_id,
            cache_dir=_hub_cache_dir(),
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
        where = _hub_cache_dir() or "the default cache (~/.cache/huggingface/hub)"
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


def _read_config_dict(folder: Path, name: str) -> dict[str, Any]:
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


def _check_weights(folder: Path, name: str, allow_pickle: bool = False) -> bool:
    """Check the folder has weights bids-w2v may read; return True for safetensors."""
    if any(folder.glob("*.safetensors")):
        return True
    pickles = sorted(p.name for pattern in _PICKLE_PATTERNS for p in folder.glob(pattern))
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


def _preprocessing(folder: Path | None) -> tuple[int, bool]:
    path = folder / "preprocessor_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return 16000, True
    try:
        prep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"'{path}' cannot be read as JSON ({exc}).") from exc
    return int(prep.get("sampling_rate", 16000)), bool(prep.get("do_normalize", True))


def _build_config(config_dict: dict[str, Any], source: str) -> Any:
    from transformers import CONFIG_MAPPING

    model_type = config_dict.get("model_type")
    try:
        config_class = CONFIG_MAPPING[model_type]
        return config_class.from_dict(config_dict)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"The model configuration from '{source}' has model_type {model_type!r}, which this "
            f"version of transformers cannot build ({exc!r}). Supported encoders: wav2vec2, "
            "hubert, wavlm, data2vec-audio."
        ) from exc


def _check_structure(model: nn.Module, name: str) -> None:
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
            "bids-w2v needs a convolutional waveform front end followed by transformer blocks, "
            "as in wav2vec2, HuBERT, WavLM and data2vec-audio models."
        )


def load_model(
    name_or_path: str,
    *,
    random_init: bool = False,
    seed: int = 0,
    allow_download: bool = False,
    allow_pickle: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> LoadedModel:
    """Load a speech encoder from a local folder or the Hugging Face hub cache.

    Parameters
    ----------
    name_or_path : str
        Folder written by ``save_pretrained`` or hub id (``"facebook/wav2vec2-base"``; the alias
        ``"wav2vec2-base"`` is accepted).
    random_init : bool, default False
        Build the architecture with random weights (``torch.manual_seed(seed)`` right before
        ``AutoModel.from_config``, inside ``torch.random.fork_rng`` so the caller's random state
        is untouched). ``facebook/wav2vec2-base`` uses the configuration shipped with the
        package, so no download or cache is needed.
    seed : int, default 0
        Seed of the random initialisation.
    allow_download : bool, default False
        Allow fetching a hub model; otherwise only the local cache is used.
    allow_pickle : bool, default False
        Accept a folder whose only weights are pickle checkpoints (``*.bin``...), read with
        ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
        containers. Safetensors weights are always preferred when present.
    device : str, default "cpu"
        Torch device to put the model on (``"auto"`` picks a GPU when there is one).
    dtype : {"float32", "bfloat16", "float16"}, default "float32"
        Precision of the encoder (``float16`` on a GPU only). The weights are hashed in
        float32 before the cast.

    Returns
    -------
    LoadedModel
        The encoder in eval mode with its identification.

    Raises
    ------
    ModelError
        If the model is missing, only has pickle weights, needs custom code, is not a supported
        encoder, or cannot be loaded.
    """
    import torch
    from transformers import AutoModel

    device = resolve_device(device)
    torch_dtype = _torch_dtype(dtype, device)
    name = str(name_or_path)
    path = Path(name).expanduser()
    folder: Path | None
    label_source = name
    if path.is_dir():
        folder = path
        label_source = path.resolve().name
    elif path.exists():
        raise ModelError(
            f"The model '{name}' is a file; give the folder written by `save_pretrained` (with "
            "config.json and model.safetensors) or a Hugging Face hub id."
        )
    elif _looks_like_path(name):
        raise ModelError(
            f"The model folder '{name}' does not exist. Check the path, or give a Hugging Face "
            "hub id such as 'facebook/wav2vec2-base'."
        )
    elif random_init and name in SHIPPED_CONFIGS:
        folder = None
    else:
        repo_id = _ALIASES.get(name, name)
        folder = _resolve_hub_folder(repo_id, allow_download, weights=not random_init)

    if folder is None:
        shipped = resources.files("bids_w2v") / "data" / "models" / SHIPPED_CONFIGS[name]
        config_dict = json.loads(shipped.read_text(encoding="utf-8"))
        source = f"the configuration of {name} shipped with bids-w2v"
    else:
        config_dict = _read_config_dict(folder, name)
        source = str(folder / "config.json")
    use_safetensors = True
    if not random_init:
        use_safetensors = _check_weights(folder, name, allow_pickle)
    config = _build_config(config_dict, source)

    try:
        if random_init:
            with torch.random.fork_rng(devices=[]):  # same seed, same weights; global RNG kept
                torch.manual_seed(int(seed))
                model = AutoModel.from_config(config, dtype=torch.float32)
        else:
            model, info = AutoModel.from_pretrained(
                str(folder),
                config=config,
                use_safetensors=use_safetensors,
                weights_only=True,  # never unpickle code, even with --allow-pickle
                trust_remote_code=False,
                dtype=torch.float32,
                local_files_only=True,
                output_loading_info=True,
            )
            missing = [k for k in info.get("missing_keys", ()) if not k.endswith(_IGNORED_MISSING)]
            if missing:
                raise ModelError(
                    f"The weights of the model '{name}' (folder '{folder}') do not cover the "
                    f"encoder: {len(missing)} tensors are missing (e.g. {missing[0]}), so they "
                    "would be random. Check that the folder holds a wav2vec2-family encoder "
                    "saved with `save_pretrained`."
                )
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"The model '{name}' could not be loaded by transformers ({reason}). Check that the "
            "folder was written by `save_pretrained(..., safe_serialization=True)` for a "
            "wav2vec2-family encoder."
        ) from exc
    _check_structure(model, name)
    digest = weights_sha256(model)
    try:
        model = model.to(device=device, dtype=torch_dtype)
    except (RuntimeError, AssertionError) as exc:
        raise ModelError(
            f"The model '{name}' cannot be moved to device {device!r} ({exc}). Use 'cpu' or an "
            "available accelerator such as 'cuda'."
        ) from exc
    model.eval()
    model.requires_grad_(False)
    sampling_rate, do_normalize = _preprocessing(folder)
    return LoadedModel(
        model=model,
        name=name,
        label=model_label(label_source, random_init),
        random_init=bool(random_init),
        seed=int(seed) if random_init else None,
        sampling_rate=sampling_rate,
        do_normalize=do_normalize,
        model_type=str(config.model_type),
        weights_sha256=digest,
        dtype=dtype,
        device=device,
    )
