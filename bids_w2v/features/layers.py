"""Names of the layers of a speech encoder and parsing of user layer selections.

Layers are named along the depth of the network: ``conv0`` .. ``conv{N-1}`` for the blocks of
a convolutional front end (``model.feature_extractor.conv_layers`` of wav2vec2, HuBERT, WavLM,
data2vec-audio and wav2vec2-conformer; Whisper's two convolutions), then ``transformer0`` ..
``transformer{L-1}`` for the encoder blocks (``transformer<i>`` is transformers'
``hidden_states[i + 1]``; w2v-BERT 2.0 has no conv front end). The acoustic baselines have one
layer named after them (``mel``, ``envelope``); see :mod:`bids_w2v.features.families`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bids_w2v.errors import InputError

__all__ = ["available_layers", "describe_layers", "layer_index", "parse_layers"]

_GROUPS = ("conv", "transformer")
_NAME = re.compile(r"^(conv|transformer)(\d+)$")


def available_layers(model: Any) -> list[str]:
    """List the layers of a speech encoder, in depth order.

    Parameters
    ----------
    model : torch.nn.Module or LoadedModel
        A supported encoder or acoustic baseline (or a
        :class:`~bids_w2v.features.models.LoadedModel`).

    Returns
    -------
    list of str
        ``["conv0", ..., "conv{N-1}", "transformer0", ..., "transformer{L-1}"]``.
    """
    from bids_w2v.features.families import family_layers

    module = getattr(model, "model", model)
    return family_layers(module)


def describe_layers(available: Sequence[str]) -> str:
    """Summarise available layers compactly, e.g. ``"conv0-conv6, transformer0-transformer11"``.

    Parameters
    ----------
    available : sequence of str
        Layer names in depth order.

    Returns
    -------
    str
        One range per layer group, followed by the depth indices.
    """
    parts = []
    for group in _GROUPS:
        names = [n for n in available if n.startswith(group)]
        if names:
            parts.append(names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}")
    others = [n for n in available if not _NAME.match(n)]
    parts.extend(others)
    return f"{', '.join(parts)} (or depth indices 0-{len(available) - 1})"


def _unknown(token: str, available: Sequence[str]) -> InputError:
    return InputError(
        f"Unknown layer '{token}'. This model has the layers {describe_layers(available)}. "
        "Give names, comma-separated lists, ranges such as 'transformer0-transformer5' or "
        "'0-6', the groups 'conv' or 'transformer', or 'all'."
    )


def _resolve_one(token: str, available: Sequence[str]) -> int:
    if token in available:
        return list(available).index(token)
    if token.isdigit():
        index = int(token)
        if index < len(available):
            return index
    raise _unknown(token, available)


def _expand(token: str, available: Sequence[str]) -> list[int]:
    token = token.strip()
    if not token:
        return []
    if token.lower() == "all":
        return list(range(len(available)))
    if token in _GROUPS:
        matches = [(i, _NAME.match(n)) for i, n in enumerate(available)]
        indices = [i for i, m in matches if m is not None and m.group(1) == token]
        if not indices:
            raise _unknown(token, available)
        return indices
    if "-" in token:
        start_s, _, stop_s = token.partition("-")
        try:
            start = _resolve_one(start_s.strip(), available)
            stop = _resolve_one(stop_s.strip(), available)
        except InputError:
            raise _unknown(token, available) from None
        if stop < start:
            raise InputError(
                f"The layer range '{token}' goes backwards; write it from the shallower to the "
                f"deeper layer. This model has the layers {describe_layers(available)}."
            )
        return list(range(start, stop + 1))
    return [_resolve_one(token, available)]


def parse_layers(spec: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Turn a user layer selection into layer names.

    Parameters
    ----------
    spec : str, sequence of str or None
        ``None`` or ``"all"`` for every layer; otherwise names (``"transformer7"``),
        comma-separated lists, inclusive ranges of names (``"transformer0-transformer5"``,
        ``"conv0-conv6"``) or of 0-based depth indices (``"0-6"``, ``"9"``), and the groups
        ``"conv"`` / ``"transformer"``. A sequence may mix these forms.
    available : sequence of str
        Layers of the model, in depth order (see :func:`available_layers`).

    Returns
    -------
    list of str
        Selected layers, without duplicates, in depth order.

    Raises
    ------
    InputError
        If a name, index or range does not exist, or if nothing is selected.
    """
    available = list(available)
    if spec is None:
        return available
    tokens = [spec] if isinstance(spec, str) else list(spec)
    indices: set[int] = set()
    for item in tokens:
        for token in str(item).split(","):
            indices.update(_expand(token, available))
    if not indices:
        raise InputError(
            f"No layer was selected by {spec!r}. This model has the layers "
            f"{describe_layers(available)}."
        )
    return [available[i] for i in sorted(indices)]


def layer_index(name: str, available: Sequence[str]) -> int:
    """Return the 0-based depth index of a layer.

    Parameters
    ----------
    name : str
        Layer name, e.g. ``"transformer0"``.
    available : sequence of str
        Layers of the model, in depth order.

    Returns
    -------
    int
        Position along depth (``conv0`` is 0; for wav2vec2-base ``transformer0`` is 7).

    Raises
    ------
    InputError
        If the layer does not exist.
    """
    available = list(available)
    if name not in available:
        raise _unknown(name, available)
    return available.index(name)
