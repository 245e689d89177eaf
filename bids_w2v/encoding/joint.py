"""Feature spaces of ``--joint``: ``MODEL:LAYER`` or ``MODEL`` (a model with a single layer).

``MODEL`` is one of the run's ``--model`` values, or the label its maps carry (``desc-<label>``,
e.g. ``wav2vec2base``, ``wav2vec2baseRandom``, ``mel``). The canonical form recorded in the
configuration is ``<label>:<layer>``, or ``<label>`` when the layer is the model's only one (it
is then known only once the features are extracted: :func:`pick_layer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["JointSpace", "joint_desc", "parse_joint", "pick_layer", "space_desc"]


class JointSpace(tuple):
    """``(model_label, layer)``; ``layer`` is ``None`` for a single-layer model."""

    __slots__ = ()

    def __new__(cls, label: str, layer: str | None):
        return super().__new__(cls, (label, layer))

    @property
    def label(self) -> str:
        return self[0]

    @property
    def layer(self) -> str | None:
        return self[1]

    def __str__(self) -> str:
        return self.label if self.layer is None else f"{self.label}:{self.layer}"


def parse_joint(values: Sequence[str], models: Mapping[str, str]) -> list[JointSpace]:
    """Resolve ``--joint`` values against the run's models.

    Parameters
    ----------
    values : sequence of str
        ``MODEL:LAYER`` or ``MODEL`` (at least two, all different).
    models : mapping
        ``--model`` value (e.g. ``facebook/wav2vec2-base``, ``mel``, ``NAME:random``) -> its
        label (``wav2vec2base``, ``mel``, ``NAMERandom``).

    Returns
    -------
    list of JointSpace

    Raises
    ------
    ValueError
        With a sentence naming the problem and the fix (unknown model, fewer than two spaces,
        a space given twice).
    """
    by_name = {**{label: label for label in models.values()}, **dict(models)}
    spaces = []
    for value in values:
        if value in by_name:
            space = JointSpace(by_name[value], None)
        else:
            model, sep, layer = value.rpartition(":")
            if not sep or model not in by_name or not layer:
                known = ", ".join(sorted(set(models.values())))
                raise ValueError(
                    f"--joint {value!r} names no model of this run. Give each feature space as "
                    "MODEL:LAYER (e.g. wav2vec2base:transformer6) or MODEL for a single-layer "
                    f"model (e.g. mel), where MODEL is a --model of the run ({known}) or its "
                    "label; add the model with --model if it is missing."
                )
            space = JointSpace(by_name[model], layer)
        if space in spaces:
            raise ValueError(f"--joint names the feature space {space} twice; give it once.")
        spaces.append(space)
    if len(spaces) < 2:
        raise ValueError(
            f"--joint needs at least two feature spaces (got {len(spaces)}), e.g. --joint "
            "wav2vec2base:transformer6 mel."
        )
    return spaces


def from_config(values: Sequence[str]) -> list[JointSpace]:
    """The canonical ``label[:layer]`` strings of the configuration back as spaces."""
    out = []
    for value in values:
        label, _, layer = value.partition(":")
        out.append(JointSpace(label, layer or None))
    return out


def pick_layer(space: JointSpace, layers: Sequence[str]) -> str:
    """The layer of ``space`` among a model's extracted ``layers``.

    Raises
    ------
    ValueError
        When the layer is not among them, or when no layer was named and the model has several.
    """
    if space.layer is None:
        if len(layers) == 1:
            return layers[0]
        raise ValueError(
            f"--joint {space.label} names a model with {len(layers)} layers "
            f"({', '.join(layers)}); name one as {space.label}:LAYER."
        )
    if space.layer not in layers:
        raise ValueError(
            f"--joint {space}: the model {space.label} has no layer {space.layer!r} among the "
            f"extracted ones ({', '.join(layers)}); name one of them (and check --layers)."
        )
    return space.layer


def space_desc(label: str, layer: str) -> str:
    """The ``desc-`` label of one space: the model label and the layer, as single-model maps."""
    clean = re.sub(r"[^A-Za-z0-9]", "", label)
    layer = re.sub(r"[^A-Za-z0-9]", "", layer)
    if not layer or clean.lower().endswith(layer.lower()):
        return clean
    return clean + layer[:1].upper() + layer[1:]


def joint_desc(descs: Sequence[str]) -> str:
    """The ``desc-`` label of the joint model: ``joint`` then each space's label."""
    return "joint" + "".join(d[:1].upper() + d[1:] for d in descs)
