"""Report figures of surface maps (GIfTI per hemisphere, CIFTI dense scalars).

The reports show volume maps as glass brains and surface maps as brains too, the way the
paper's figures do: lateral and medial views of both hemispheres on an inflated mesh, with one
colour bar (in layer names for the peak-layer maps). :mod:`bids_w2v.reports.surface_meshes`
finds the mesh offline (nilearn's bundled fsaverage5 for the nested fsaverage meshes,
TemplateFlow's ``tpl-fsaverage`` / ``tpl-fsLR`` in ``TEMPLATEFLOW_HOME``, the participant's own
fMRIPrep surfaces for fsnative); :func:`map_figure` returns the PNG and a caption saying which
mesh was drawn, or why a histogram of the values is shown instead. A report never touches the
network. Drawing uses nilearn's ``plot_surf`` (matplotlib): four views per map, about one second
on fsaverage5 and four on fsaverage6 at full resolution.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.outputs.maps import load_map_data
from bids_w2v.reports.figures import glass_brain_png, label_colorbar
from bids_w2v.reports.html import figure_png, img_tag
from bids_w2v.reports.surface_meshes import Mesh, find_mesh, surface_values
from bids_w2v.spaces import VertexSpace, space_of_file

#: the views of each hemisphere, as in the paper's figures
VIEWS = ("lateral", "medial")


@dataclass(frozen=True)
class MapFigure:
    """A report figure: the PNG and its caption (which mesh, or why none; empty for volumes)."""

    png: bytes
    caption: str


def is_surface_map(path: Path) -> bool:
    """Whether ``path`` is a GIfTI or CIFTI map (not a NIfTI volume)."""
    return issubclass(space_of_file(path), VertexSpace)


def report_map_files(map_files: list[Path]) -> list[Path]:
    """One file per map: the hemi-R GIfTIs are dropped (:func:`load_report_map` joins them)."""
    return [Path(f) for f in map_files if "_hemi-R_" not in Path(f).name]


def load_report_map(path: Path) -> np.ndarray:
    """A map's values as one array: NIfTI 3-D, CIFTI grayordinates, or GIfTI L then R."""
    path = Path(path)
    values = load_map_data(path)
    files = space_of_file(path).map_files(path)  # (hemi-L, hemi-R) GIfTIs, else (path,)
    if len(files) > 1 and files[0] == path != files[1] and files[1].exists():
        values = np.concatenate([values, load_map_data(files[1])])
    return values


def _histogram_png(values: np.ndarray, title: str, *, cmap: str, vmin: float, vmax: float) -> bytes:
    import matplotlib.pyplot as plt

    finite = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    counts, edges, patches = ax.hist(finite, bins=40, range=(vmin, vmax) if vmax > vmin else None)
    colours = plt.get_cmap(cmap)(np.linspace(0, 1, len(patches)))
    for patch, colour in zip(patches, colours, strict=True):
        patch.set_facecolor(colour)
    ax.set_title(f"{title} ({finite.size} values; no mesh found, see the caption)", fontsize=9)
    ax.set_xlabel(title)
    ax.set_ylabel("vertices")
    ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig, dpi=90)


def add_colorbar(fig, cax, *, cmap: str, vmin: float, vmax: float, ticks=None) -> None:
    """A vertical colour bar; ``ticks`` ((value, label), ...) names its ticks (layer names)."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), plt.get_cmap(cmap)), cax=cax)
    bar.ax.tick_params(labelsize=7)
    label_colorbar(bar, ticks)


def draw_on_mesh(
    left: np.ndarray,
    right: np.ndarray,
    mesh: Mesh,
    title: str,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    ticks: Sequence[tuple[float, str]] | None = None,
) -> bytes:
    """Lateral and medial views of both hemispheres (NaN: not drawn, the sulci show through).

    Parameters
    ----------
    left, right : ndarray
        Values per vertex of each hemisphere; the first ``mesh.n_vertices`` are drawn (the
        fsaverage meshes are nested).
    mesh : Mesh
        The surfaces.
    title, cmap, vmin, vmax
        Figure settings.
    ticks : sequence of (value, label), optional
        Colour-bar tick labels (layer names of a peak-layer map).

    Returns
    -------
    bytes
        PNG.
    """
    import matplotlib.pyplot as plt
    from nilearn import plotting

    fig = plt.figure(figsize=(7.2, 4.6))
    for col, (hemi, values) in enumerate((("left", left), ("right", right))):
        coords, faces = mesh.coords[col], mesh.faces[col]
        part = np.asarray(values[: len(coords)], dtype=np.float64)
        for row, view in enumerate(VIEWS):
            ax = fig.add_axes((0.02 + 0.43 * col, 0.5 - 0.46 * row, 0.43, 0.44), projection="3d")
            plotting.plot_surf(
                (coords.copy(), faces),  # nilearn centres the coordinates in place
                part,
                bg_map=mesh.sulc[col],
                hemi=hemi,
                view=view,
                engine="matplotlib",
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                colorbar=False,
                axes=ax,
                figure=fig,
            )
            ax.set_box_aspect(None, zoom=1.45)  # nilearn leaves a wide margin (zoom 1.3)
            ax.set_title(f"{hemi} {view}", fontsize=8, y=0.98)
    add_colorbar(
        fig, fig.add_axes((0.9, 0.2, 0.025, 0.6)), cmap=cmap, vmin=vmin, vmax=vmax, ticks=ticks
    )
    fig.suptitle(title)
    return figure_png(fig, dpi=80)


def surface_map_figure(
    values: np.ndarray,
    reference: Path,
    title: str,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    ticks: Sequence[tuple[float, str]] | None = None,
) -> MapFigure:
    """Draw a surface map (values as :func:`load_report_map` returns for ``reference``).

    Parameters
    ----------
    values : ndarray
        Map values (GIfTI: left then right hemisphere; CIFTI: grayordinates).
    reference : Path
        The map file the values come from (hemi-L GIfTI or CIFTI).
    title, cmap, vmin, vmax, ticks
        Figure settings (:func:`draw_on_mesh`).

    Returns
    -------
    MapFigure
        Brains on the mesh :func:`~bids_w2v.reports.surface_meshes.find_mesh` finds, else a
        histogram; the caption says which.
    """
    reference = Path(reference)
    values = np.asarray(values, dtype=np.float64)
    surface = surface_values(values, reference)
    if surface is None:
        caption = "The map has no cortical surface to draw; histogram of the values instead."
    else:
        mesh, caption = find_mesh(surface, reference)
        if mesh is not None:
            png = draw_on_mesh(
                surface.left,
                surface.right,
                mesh,
                title,
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                ticks=ticks,
            )
            return MapFigure(png, f"Lateral and medial views of both hemispheres. {caption}")
    return MapFigure(_histogram_png(values, title, cmap=cmap, vmin=vmin, vmax=vmax), caption)


def map_figure(
    values: np.ndarray,
    reference: Path,
    title: str,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    ticks: Sequence[tuple[float, str]] | None = None,
) -> MapFigure:
    """A glass brain of a volume map, or :func:`surface_map_figure` of a surface map."""
    if is_surface_map(reference):
        return surface_map_figure(
            values, reference, title, cmap=cmap, vmin=vmin, vmax=vmax, ticks=ticks
        )
    affine = nb.load(str(reference)).affine
    img = nb.Nifti1Image(np.asarray(values, dtype=np.float32), affine)
    return MapFigure(glass_brain_png(img, title, cmap=cmap, vmin=vmin, vmax=vmax, ticks=ticks), "")


def map_png(
    values: np.ndarray, reference: Path, title: str, *, cmap: str, vmin: float, vmax: float
) -> bytes:
    """The PNG of :func:`map_figure` (without its caption)."""
    return map_figure(values, reference, title, cmap=cmap, vmin=vmin, vmax=vmax).png


def figure_html(figure: MapFigure, alt: str) -> str:
    """The ``<img>`` of a figure, and its caption as a note (if any)."""
    caption = f'\n<p class="note">{html.escape(figure.caption)}</p>' if figure.caption else ""
    return img_tag(figure.png, alt) + caption
