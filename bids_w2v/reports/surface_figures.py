"""Report figures of surface maps (GIfTI per hemisphere, CIFTI dense scalars).

The participant report shows volume maps as glass brains; these helpers let it show surface
maps too. GIfTI maps on fsaverage5 (recognised by its 10242 vertices per hemisphere) are drawn
on the fsaverage5 mesh bundled with nilearn; other surfaces (fsaverage6 and fsaverage, whose
meshes nilearn would download, fsnative, CIFTI grayordinates) get a histogram of the values:
a report never touches the network.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.outputs.maps import load_map_data
from bids_w2v.reports.html import figure_png
from bids_w2v.spaces import VertexSpace, space_of_file

#: vertices per hemisphere of the fsaverage meshes bundled with nilearn (no download)
FSAVERAGE_MESHES = {10242: "fsaverage5"}


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
    ax.set_title(f"{title} ({finite.size} vertices; no mesh to draw on)", fontsize=9)
    ax.set_xlabel(title)
    ax.set_ylabel("vertices")
    ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig, dpi=90)


def surface_map_png(
    values: np.ndarray, reference: Path, title: str, *, cmap: str, vmin: float, vmax: float
) -> bytes:
    """Draw a surface map (values as :func:`load_report_map` returns for ``reference``).

    Parameters
    ----------
    values : ndarray
        Map values (GIfTI: left then right hemisphere).
    reference : Path
        The map file the values come from (hemi-L GIfTI or CIFTI).
    title, cmap, vmin, vmax
        Figure settings.

    Returns
    -------
    bytes
        PNG.
    """
    import matplotlib.pyplot as plt
    from nilearn import datasets, plotting

    reference = Path(reference)
    n_left = 0
    if len(space_of_file(reference).hemis) > 1:  # GIfTI: the hemi-L file
        n_left = int(nb.load(str(reference)).darrays[0].data.shape[0])
    mesh_name = FSAVERAGE_MESHES.get(n_left)
    if mesh_name is None or values.size != 2 * n_left:
        return _histogram_png(values, title, cmap=cmap, vmin=vmin, vmax=vmax)
    mesh = datasets.load_fsaverage(mesh_name)  # bundled with nilearn (no download)
    fig, axes = plt.subplots(1, 2, subplot_kw={"projection": "3d"}, figsize=(8, 3.5))
    for ax, hemi, part in zip(
        axes, ("left", "right"), (values[:n_left], values[n_left:]), strict=True
    ):
        plotting.plot_surf_stat_map(
            mesh["inflated"].parts[hemi],
            np.nan_to_num(part, nan=0.0),
            hemi=hemi,
            view="lateral",
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            colorbar=hemi == "right",
            axes=ax,
            figure=fig,
        )
    fig.suptitle(title)
    return figure_png(fig, dpi=90)


def map_png(
    values: np.ndarray, reference: Path, title: str, *, cmap: str, vmin: float, vmax: float
) -> bytes:
    """A glass brain of a volume map, or :func:`surface_map_png` of a surface map."""
    from bids_w2v.reports.figures import glass_brain_png

    if is_surface_map(reference):
        return surface_map_png(values, reference, title, cmap=cmap, vmin=vmin, vmax=vmax)
    affine = nb.load(str(reference)).affine
    img = nb.Nifti1Image(np.asarray(values, dtype=np.float32), affine)
    return glass_brain_png(img, title, cmap=cmap, vmin=vmin, vmax=vmax)
