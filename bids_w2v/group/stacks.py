"""One model's participant maps read one layer at a time (:class:`ModelMaps`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_w2v.errors import InputError
from bids_w2v.group.collection import (
    PROVENANCE_KEYS,
    MapGrid,
    load_grid,
    load_map,
    map_tasks,
    same_grid,
)


@dataclass
class ModelMaps:
    """One model's participant maps on a common grid, read one layer at a time
    (:meth:`layer`): the group level holds a participants x voxels matrix of one layer, not
    every layer at once (300 participants x 81,924 vertices: 98 MB per layer in float32)."""

    model_label: str
    layers: list[str]
    indices: list[int]
    subjects: list[str]
    ref: MapGrid
    provenance: dict
    files: dict[str, list[tuple[str, Path]]]  # layer -> (subject, map path)

    def layer(self, name: str, subjects: Sequence[str] | None = None) -> np.ndarray:
        """The maps of one layer, shape ``(n_subjects, *grid)`` in float32 (as stored; NaN
        outside a mask or for a participant without this layer), rows in the order of
        ``subjects`` (default :attr:`subjects`)."""
        subjects = list(self.subjects if subjects is None else subjects)
        row = {s: i for i, s in enumerate(subjects)}
        out = np.full((len(subjects),) + self.ref.shape, np.nan, dtype=np.float32)
        for sub, path in self.files[name]:
            if sub in row:
                out[row[sub]] = load_map(path)
        return out


def open_model_maps(layer_maps: Mapping[str, Sequence[tuple[str, Path, dict]]]) -> ModelMaps:
    """One model's participant maps (from :func:`collect_participant_maps`), their grids
    checked but their values left on disk until :meth:`ModelMaps.layer` reads them.

    Raises
    ------
    InputError
        If the maps are not all on one grid.
    """
    layers = sorted(layer_maps, key=lambda n: layer_maps[n][0][2]["LayerIndex"])
    indices = [int(layer_maps[n][0][2]["LayerIndex"]) for n in layers]
    subjects = sorted({s for n in layers for s, _, _ in layer_maps[n]})
    first = layer_maps[layers[0]][0][1]
    ref = load_grid(first)
    for name in layers:  # every grid checked before any output is written
        for _, path, _ in layer_maps[name]:
            if not same_grid(load_grid(path), ref):
                raise InputError(
                    f"{path} is not on the same grid (or surface mesh) as {first}; the group "
                    "level needs every participant in the same space and resolution (re-run the "
                    "participant level with one --space SPACE:res-N for all; fsnative surfaces "
                    "differ between participants: use fsaverage* or fsLR)."
                )
    meta = layer_maps[layers[0]][0][2]
    provenance = {k: v for k, v in meta.items() if k in PROVENANCE_KEYS}
    provenance["Participants"] = subjects
    # participants may have heard different sets of stories (each fitted on all of its own)
    tasks = {s: map_tasks(p, m) for n in layers for s, p, m in layer_maps[n]}
    provenance["Tasks"] = sorted({t for ts in tasks.values() for t in ts})
    provenance["ParticipantTasks"] = {f"sub-{s}": list(tasks[s]) for s in subjects}
    files = {n: [(s, p) for s, p, _ in layer_maps[n]] for n in layers}
    return ModelMaps(meta["ModelLabel"], layers, indices, subjects, ref, provenance, files)

