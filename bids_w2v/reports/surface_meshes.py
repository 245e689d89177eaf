"""Meshes to draw surface maps on, found offline (the reports never touch the network).

:func:`surface_values` puts a map's values on each hemisphere's full mesh (GIfTI: the left and
right files; CIFTI: the cortical grayordinates at their vertex indices). :func:`find_mesh` then
looks for a mesh with that many vertices per hemisphere, or a nested subset of it:

- **fsaverage** family (``fsaverage``, ``fsaverage6``, ``fsaverage5``, or a map of 10242, 40962
  or 163842 vertices per hemisphere): TemplateFlow's ``tpl-fsaverage`` surfaces in
  ``TEMPLATEFLOW_HOME`` at the map's density (up to 41k; a 164k map is drawn on den-41k when
  present, else den-164k), else nilearn's bundled fsaverage5 mesh. The fsaverage meshes are
  nested icosahedra: each subdivision appends the new vertices after the old ones, so the
  first 10242 vertices of each fsaverage6 or fsaverage hemisphere *are* fsaverage5's, and the
  first 40962 of fsaverage are fsaverage6's (``tests/reports/test_surface_meshes.py`` checks
  this structure on nilearn's fsaverage5 sphere). A finer map is drawn by taking its first
  vertices of each hemisphere, and the caption says so.
- **fsnative**: the participant's own surfaces that fMRIPrep wrote next to the BOLD files
  (``sub-XX/anat/sub-XX_hemi-L_inflated.surf.gii``, else midthickness, pial or white, or
  FreeSurfer's ``sourcedata/freesurfer/sub-XX/surf/lh.inflated``), found from the map's
  ``Sources``.
- **fsLR** (CIFTI ``den-91k``: the CIFTI file holds no mesh): TemplateFlow's ``tpl-fsLR``.

When none is found, the caption says why and what to install, and the report shows a histogram.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import nibabel as nb
import numpy as np

from bids_w2v.outputs.maps import read_sidecar

#: vertices per hemisphere of the icosahedral fsaverage meshes (nested: each one's vertices
#: are the first ones of the next)
FSAVERAGE_VERTICES = {
    "fsaverage3": 642,
    "fsaverage4": 2562,
    "fsaverage5": 10242,
    "fsaverage6": 40962,
    "fsaverage": 163842,
}
#: TemplateFlow density labels by vertices per hemisphere
TEMPLATEFLOW_DENSITIES = {
    "fsaverage": {10242: "10k", 40962: "41k", 163842: "164k"},
    "fsLR": {32492: "32k", 59292: "59k", 163842: "164k"},
}
#: surfaces tried in order (the first that exists with the right vertex count is drawn)
SURFACE_KINDS = ("inflated", "veryinflated", "midthickness", "pial", "white")
#: finest mesh drawn when a coarser nested one is available (finer faces are below a pixel)
MAX_DRAWN_VERTICES = 40962
FETCH_HINT = (
    "python -c \"from templateflow import api; api.get('{tpl}', density='{den}', "
    "suffix='inflated')\" where there is internet, then point TEMPLATEFLOW_HOME at that folder"
)


@dataclass(frozen=True)
class Mesh:
    """Surfaces of both hemispheres (coordinates, triangles, optional sulcal depth)."""

    coords: tuple[np.ndarray, np.ndarray]
    faces: tuple[np.ndarray, np.ndarray]
    sulc: tuple[np.ndarray | None, np.ndarray | None]
    caption: str

    @property
    def n_vertices(self) -> tuple[int, int]:
        """Vertices per hemisphere (the map's first vertices of each hemisphere are drawn)."""
        return (len(self.coords[0]), len(self.coords[1]))


@dataclass(frozen=True)
class SurfaceValues:
    """A map's values on each hemisphere's full mesh, and what the map says of its mesh."""

    left: np.ndarray
    right: np.ndarray
    space: str | None  # the file name's space entity (fsaverage6, fsnative, fsLR), if any
    other: int = 0  # values on no hemisphere (CIFTI subcortical voxels), not drawn


def space_entity(path: Path) -> str | None:
    """The ``space-`` entity of a file name, if any."""
    found = re.search(r"_space-([A-Za-z0-9]+)", Path(path).name)
    return found[1] if found else None


def surface_values(values: np.ndarray, reference: Path) -> SurfaceValues | None:
    """Split a surface map's values by hemisphere (None: no cortical surface in it).

    Parameters
    ----------
    values : ndarray
        GIfTI: left then right hemisphere; CIFTI: the grayordinates of ``reference``.
    reference : Path
        The map's hemi-L GIfTI or its ``.dscalar.nii``.
    """
    reference = Path(reference)
    values = np.asarray(values, dtype=np.float64)
    space = space_entity(reference)
    if reference.name.endswith(".func.gii"):
        n_left = int(nb.load(str(reference)).darrays[0].data.shape[0])
        if values.size <= n_left:
            return None
        return SurfaceValues(values[:n_left], values[n_left:], space)
    axis = nb.load(str(reference)).header.get_axis(1)
    hemis: dict[str, np.ndarray] = {}
    drawn = 0
    for name, part, model in axis.iter_structures():
        hemi = {"CIFTI_STRUCTURE_CORTEX_LEFT": "L", "CIFTI_STRUCTURE_CORTEX_RIGHT": "R"}.get(name)
        if hemi is None:
            continue
        full = np.full(int(axis.nvertices[name]), np.nan)
        full[model.vertex] = values[part]
        hemis[hemi] = full
        drawn += int(model.vertex.size)
    if set(hemis) != {"L", "R"}:
        return None
    return SurfaceValues(hemis["L"], hemis["R"], space or "fsLR", values.size - drawn)


def templateflow_home() -> Path:
    """``TEMPLATEFLOW_HOME``, else TemplateFlow's default (``~/.cache/templateflow``)."""
    home = os.environ.get("TEMPLATEFLOW_HOME")
    return Path(home) if home else Path.home() / ".cache" / "templateflow"


def _load_surface(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Coordinates and triangles of a GIfTI or FreeSurfer surface (None: unreadable)."""
    try:
        if path.name.endswith(".gii"):
            img = nb.load(str(path))
            coords, faces = img.agg_data(("pointset", "triangle"))
        else:
            coords, faces = nb.freesurfer.read_geometry(str(path))
        return np.asarray(coords, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    except Exception:  # noqa: BLE001 - a broken or annexed file is no mesh
        return None


def _load_shape(path: Path, n: int) -> np.ndarray | None:
    """A per-vertex shape map (sulcal depth) of ``n`` vertices, else None."""
    if not _usable(path):
        return None
    try:
        if path.name.endswith(".gii"):
            data = np.asarray(nb.load(str(path)).agg_data(), dtype=np.float64)
        else:
            data = np.asarray(nb.freesurfer.read_morph_data(str(path)), dtype=np.float64)
    except Exception:  # noqa: BLE001
        return None
    return data if data.shape == (n,) else None


def _usable(path: Path) -> bool:
    """An existing, non-empty file (TemplateFlow skeletons and annexes hold empty links)."""
    return path.is_file() and path.stat().st_size > 0


def _mesh_of(pair: tuple[Path, Path], sulc: tuple[Path, Path], sizes: tuple[int, int], caption):
    """The mesh of two surface files if they have ``sizes`` vertices (cached while unchanged)."""
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in pair)
    return _cached_mesh(pair, stamps, sulc, sizes, caption)


@lru_cache(maxsize=8)
def _cached_mesh(pair, stamps, sulc, sizes: tuple[int, int], caption: str) -> Mesh | None:
    loaded = [_load_surface(p) for p in pair]
    if any(m is None or len(m[0]) != n for m, n in zip(loaded, sizes, strict=True)):
        return None
    shapes = tuple(_load_shape(p, n) for p, n in zip(sulc, sizes, strict=True))
    return Mesh((loaded[0][0], loaded[1][0]), (loaded[0][1], loaded[1][1]), shapes, caption)


def templateflow_mesh(template: str, n: int) -> Mesh | None:
    """TemplateFlow's ``tpl-<template>`` surfaces of ``n`` vertices per hemisphere, if present."""
    den = TEMPLATEFLOW_DENSITIES.get(template, {}).get(n)
    if den is None:
        return None
    folder = templateflow_home() / f"tpl-{template}"
    for kind in SURFACE_KINDS:
        pair = tuple(folder / f"tpl-{template}_hemi-{h}_den-{den}_{kind}.surf.gii" for h in "LR")
        if not all(_usable(p) for p in pair):
            continue
        sulc = tuple(folder / f"tpl-{template}_hemi-{h}_den-{den}_sulc.shape.gii" for h in "LR")
        caption = f"TemplateFlow's tpl-{template} den-{den} {kind} surfaces ({folder})"
        mesh = _mesh_of(pair, sulc, (n, n), caption)
        if mesh is not None:
            return mesh
    return None


@lru_cache(maxsize=1)
def nilearn_fsaverage5() -> Mesh:
    """nilearn's bundled fsaverage5 inflated mesh and sulcal depth (no download)."""
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal").data
    parts = [mesh.parts[h] for h in ("left", "right")]
    return Mesh(
        tuple(np.asarray(p.coordinates, dtype=np.float64) for p in parts),
        tuple(np.asarray(p.faces, dtype=np.int64) for p in parts),
        tuple(np.asarray(sulc.parts[h], dtype=np.float64) for h in ("left", "right")),
        "the fsaverage5 inflated mesh bundled with nilearn",
    )


def _fsaverage_mesh(space: str | None, n: int) -> tuple[Mesh | None, str]:
    name = space or next(k for k, v in FSAVERAGE_VERTICES.items() if v == n)
    home = templateflow_home() / "tpl-fsaverage"
    if n not in FSAVERAGE_VERTICES.values():
        return None, (
            f"{name} map with {n} vertices per hemisphere, not an fsaverage mesh's count "
            f"({', '.join(map(str, FSAVERAGE_VERTICES.values()))}); histogram of the values "
            "instead."
        )
    # the map's own density up to 41k; a finer map on the nested 41k mesh, then its own
    nested = sorted((v for v in FSAVERAGE_VERTICES.values() if v < n), reverse=True)
    drawn = [v for v in nested if v <= MAX_DRAWN_VERTICES]
    tries = [n, *drawn] if n <= MAX_DRAWN_VERTICES else [*drawn[:1], n, *drawn[1:]]
    for size in tries:
        mesh = templateflow_mesh("fsaverage", size)
        if mesh is not None:
            return mesh, _nested_caption(name, n, size, mesh.caption)
    if n >= FSAVERAGE_VERTICES["fsaverage5"]:
        mesh = nilearn_fsaverage5()
        caption = _nested_caption(name, n, len(mesh.coords[0]), mesh.caption)
        if n > len(mesh.coords[0]):
            den = TEMPLATEFLOW_DENSITIES["fsaverage"].get(n, "41k")
            caption += (
                f" No tpl-fsaverage den-{den} surfaces in {home}; to draw every vertex, fetch "
                f"them ({FETCH_HINT.format(tpl='fsaverage', den=den)})."
            )
        return mesh, caption
    return None, (
        f"{name} map ({n} vertices per hemisphere): no {name} mesh is bundled with nilearn and "
        f"no tpl-fsaverage surfaces of that density are in {home}; histogram of the vertex "
        "values instead."
    )


def _nested_caption(name: str, n: int, size: int, where: str) -> str:
    if size == n:
        return f"{name} map drawn at full resolution ({n} vertices per hemisphere) on {where}."
    coarse = next(k for k, v in FSAVERAGE_VERTICES.items() if v == size)
    return (
        f"{name} map ({n} vertices per hemisphere) drawn on {where}: the fsaverage meshes are "
        f"nested, so the first {size} vertices of each {name} hemisphere are {coarse}'s; "
        f"those are drawn, the other {n - size} are not."
    )


def _source_paths(reference: Path) -> list[Path]:
    """The local files of a map's ``Sources`` (``file://`` URIs or absolute paths)."""
    try:
        sources = read_sidecar(reference).get("Sources", [])
    except (OSError, ValueError):
        return []
    paths = []
    for source in map(str, sources):
        if source.startswith("file://"):
            paths.append(Path(unquote(urlparse(source).path)))
        elif source.startswith("/"):
            paths.append(Path(source))
    return paths


def _subject_candidates(bold: Path) -> list[tuple[tuple[Path, Path], tuple[Path, Path], str]]:
    """(surfaces L/R, sulcal depth L/R, kind) that fMRIPrep may have written for a BOLD."""
    parts = bold.parts
    index = next((i for i, p in enumerate(parts) if re.fullmatch(r"sub-[A-Za-z0-9]+", p)), None)
    if index is None:
        return []
    root, subject = Path(*parts[:index]), parts[index]
    anats = [root / subject / "anat", *sorted((root / subject).glob("ses-*/anat"))]
    found = []
    for kind in SURFACE_KINDS:
        for anat in anats:
            for left in sorted(anat.glob(f"{subject}*_hemi-L_{kind}.surf.gii")):
                if "_space-" in left.name:
                    continue  # a template's surface, not the participant's own
                right = left.with_name(left.name.replace("_hemi-L_", "_hemi-R_"))
                stem = left.name[: -len(f"_{kind}.surf.gii")]
                sulc = tuple(
                    anat / f"{stem.replace('_hemi-L', f'_hemi-{h}')}_sulc.shape.gii" for h in "LR"
                )
                found.append(((left, right), sulc, kind))
        for fs in (root / "sourcedata" / "freesurfer", root.parent / "freesurfer"):
            surf = fs / subject / "surf"
            pair = (surf / f"lh.{kind}", surf / f"rh.{kind}")
            found.append((pair, (surf / "lh.sulc", surf / "rh.sulc"), kind))
    return found


def subject_mesh(reference: Path, sizes: tuple[int, int]) -> Mesh | None:
    """The participant's own surfaces with ``sizes`` (left, right) vertices, found from the
    map's sources (fsnative hemispheres differ in size)."""
    bolds = [p for p in _source_paths(reference) if p.name.endswith(".func.gii")]
    for bold in bolds[:1]:
        for pair, sulc, kind in _subject_candidates(bold):
            if not all(_usable(p) for p in pair):
                continue
            caption = f"the participant's own {kind} surfaces ({pair[0]}, {pair[1].name})"
            mesh = _mesh_of(pair, sulc, sizes, caption)
            if mesh is not None:
                return mesh
    return None


def find_mesh(surface: SurfaceValues, reference: Path) -> tuple[Mesh | None, str]:
    """A mesh to draw ``surface`` on, and the figure caption (why there is none, if none).

    Parameters
    ----------
    surface : SurfaceValues
        The map's values per hemisphere (:func:`surface_values`).
    reference : Path
        The map file (its sidecar's ``Sources`` lead to fsnative surfaces).
    """
    n = surface.left.size
    space = surface.space
    if space == "fsnative":
        mesh = subject_mesh(reference, (n, surface.right.size))
        if mesh is not None:
            return mesh, f"fsnative map drawn on {mesh.caption}."
        return None, (
            f"fsnative map ({n} and {surface.right.size} vertices): the participant's own surfaces "
            "(sub-XX/anat/sub-XX_hemi-L_inflated.surf.gii, _midthickness or _pial, written by "
            "fMRIPrep next to the BOLD files in the map's Sources) were not found; histogram "
            "of the vertex values instead."
        )
    if space == "fsLR" or reference.name.endswith(".dscalar.nii"):
        mesh = templateflow_mesh("fsLR", n)
        other = f"; the {surface.other} subcortical grayordinates are not drawn" * bool(
            surface.other
        )
        if mesh is not None:
            return mesh, f"Cortical vertices drawn on {mesh.caption}{other}."
        den = TEMPLATEFLOW_DENSITIES["fsLR"].get(n)
        return None, (
            f"fsLR map ({n} vertices per hemisphere): a CIFTI file holds no mesh, and "
            f"TemplateFlow's tpl-fsLR{f' den-{den}' if den else ''} surfaces are not in "
            f"{templateflow_home() / 'tpl-fsLR'}; histogram of the values instead. To draw "
            f"brains, fetch them ({FETCH_HINT.format(tpl='fsLR', den=den or '32k')})."
        )
    if (space or "").startswith("fsaverage") or (
        space is None and n in FSAVERAGE_VERTICES.values()
    ):
        return _fsaverage_mesh(space, n)
    return None, (
        f"{space or 'unknown'} surface map ({n} vertices per hemisphere): no mesh of that "
        "space is available offline; histogram of the vertex values instead."
    )
