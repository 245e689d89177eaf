"""Capture of layer activations with forward hooks, pooled to the model frame rate.

Convolutional layers are average-pooled to the frame rate of the transformer as soon as they
are computed; the forward pass stops after the deepest requested layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from bids_w2v.features.families import is_spectral, layer_modules
from bids_w2v.features.layers import available_layers

__all__ = ["StopForward", "layer_dims", "register_hooks"]


class StopForward(Exception):
    """Raised by the hook of the deepest requested layer: later layers are not needed."""


def register_hooks(
    model: nn.Module, layers: Sequence[str], hop: int, captured: dict, state: dict
) -> list:
    """Hook each requested layer so that a forward pass stores its activations in ``captured``.

    Parameters
    ----------
    model : torch.nn.Module
        A wav2vec2-family encoder.
    layers : sequence of str
        Layer names from :func:`~bids_w2v.features.layers.available_layers`.
    hop : int
        Samples per model frame; convolutional layers are average-pooled to it.
    captured : dict
        Filled at each forward pass with a float32 ``(batch, frames, dim)`` array per layer.
    state : dict
        Shared with the caller: ``state["n_keep"]`` (frames to keep of each conv layer) is read
        by the hooks; ``state["conv_only"]`` is set here (True when no transformer layer is
        requested, so the transformer need not run).

    Returns
    -------
    list
        The hook handles, to ``remove()`` when done. The hook of the deepest requested layer
        raises :class:`StopForward` when later layers exist.
    """
    available = available_layers(model)
    deepest = max(layers, key=available.index)
    stop_early = deepest != available[-1]
    handles = []

    def make_hook(name: str, pool: int | None, activation: Callable | None) -> Callable:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor | tuple) -> None:
            out = output[0] if isinstance(output, tuple) else output
            if activation is not None:
                out = activation(out)
            if pool is not None:  # (batch, channels, time) at the layer's own rate
                if pool > 1:
                    out = F.avg_pool1d(out, kernel_size=pool, stride=pool)
                out = out[:, :, : state["n_keep"]].transpose(1, 2)
            captured[name] = out.float().cpu().contiguous().numpy()
            if stop_early and name == deepest:
                raise StopForward

        return hook

    for name in layers:
        module, pool, activation = layer_modules(model, name, hop)
        handles.append(module.register_forward_hook(make_hook(name, pool, activation)))
    state["conv_only"] = all(n.startswith("conv") for n in layers) and not is_spectral(model)
    return handles


def layer_dims(model: nn.Module, layers: Sequence[str]) -> dict[str, int]:
    """Width of each requested layer (conv channels or the encoder's hidden size)."""
    dims = {}
    width = int(getattr(model.config, "d_model", None) or model.config.hidden_size)
    for name in layers:
        if name.startswith("conv") and not is_spectral(model):
            dims[name] = int(model.config.conv_dim[int(name.removeprefix("conv"))])
        else:  # Whisper's convolutions have the encoder's width
            dims[name] = width
    return dims
