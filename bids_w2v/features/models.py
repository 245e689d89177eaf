"""Loading transformers audio encoders safely, and the acoustic baselines as models.

Supported encoders: wav2vec 2.0, HuBERT, WavLM, data2vec-audio, wav2vec2-conformer (waveform
input), Whisper's encoder (log-mel input) and w2v-BERT 2.0 (filter-bank input); see
:mod:`bids_w2v.features.families`. ``mel`` and ``envelope`` are the model-free acoustic
baselines of :mod:`bids_w2v.features.acoustic`.

Models come from a local folder written by ``save_pretrained`` or from the Hugging Face hub cache.
Only ``*.safetensors`` weights are read (pickle checkpoints only with ``allow_pickle``, and
then through torch's weights-only unpickler) and remote code is never executed. Nothing is
downloaded unless ``allow_download=True``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from pickle import UnpicklingError
from typing import TYPE_CHECKING, Any

from bids_w2v.errors import InputError, ModelError
from bids_w2v.features.acoustic import ACOUSTIC_TYPES, load_acoustic
from bids_w2v.features.families import load_processor
from bids_w2v.features.model_folder import (
    build_config,
    check_structure,
    check_weights,
    looks_like_path,
    read_config,
    read_preprocessing,
    resolve_hub_folder,
)

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
    "openai/whisper-base": "whisper-base.json",
    "whisper-base": "whisper-base.json",
    "facebook/w2v-bert-2.0": "w2v-bert-2.0.json",
    "w2v-bert-2.0": "w2v-bert-2.0.json",
}
_ALIASES = {
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-large": "facebook/wav2vec2-large",
    "whisper-base": "openai/whisper-base",
    "w2v-bert-2.0": "facebook/w2v-bert-2.0",
}
#: Precisions the encoder can run in (``float16`` only on a GPU).
DTYPES = ("float32", "bfloat16", "float16")
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
    processor : object or None
        The transformers feature extractor of a spectral encoder (Whisper, w2v-BERT), applied
        to each window; None for waveform encoders, whose waveform is normalised here
        (``do_normalize``) as ``Wav2Vec2FeatureExtractor`` does, and for the baselines.
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
    processor: Any = None


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
    name = str(name_or_path)
    if name in ACOUSTIC_TYPES and not Path(name).is_dir():
        return load_acoustic(name, random_init)
    import torch
    from transformers import AutoModel

    device = resolve_device(device)
    torch_dtype = _torch_dtype(dtype, device)
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
    elif looks_like_path(name):
        raise ModelError(
            f"The model folder '{name}' does not exist. Check the path, or give a Hugging Face "
            "hub id such as 'facebook/wav2vec2-base'."
        )
    elif random_init and name in SHIPPED_CONFIGS:
        folder = None
    else:
        repo_id = _ALIASES.get(name, name)
        folder = resolve_hub_folder(repo_id, allow_download, weights=not random_init)

    if folder is None:
        shipped = resources.files("bids_w2v") / "data" / "models" / SHIPPED_CONFIGS[name]
        config_dict = json.loads(shipped.read_text(encoding="utf-8"))
        source = f"the configuration of {name} shipped with bids-w2v"
    else:
        config_dict = read_config(folder, name)
        source = str(folder / "config.json")
    use_safetensors = True
    if not random_init:
        use_safetensors = check_weights(folder, name, allow_pickle)
    config = build_config(config_dict, source)

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
            if config.model_type == "whisper":  # only the encoder is used
                missing = [k for k in missing if k.startswith(("encoder.", "model.encoder."))]
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
    if config.model_type == "whisper":
        model = model.get_encoder()  # the decoder is dropped
    check_structure(model, name)
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
    sampling_rate, do_normalize = read_preprocessing(folder)
    processor = load_processor(model, folder, name)
    if processor is not None:  # the feature extractor normalises each window itself
        sampling_rate, do_normalize = int(processor.sampling_rate), False
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
        processor=processor,
    )
