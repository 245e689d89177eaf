"""Map spaces: NIfTI volumes, GIfTI surfaces and CIFTI grayordinates behind one interface.

:func:`space_for` gives the class of a kind of space (:class:`VolumeSpace`,
:class:`SurfaceSpace`, :class:`CiftiSpace`); each finds and inspects a run's files, makes the
space of a participant's runs (``common``), loads a run's series in it (``load``) and writes
values back as maps in the input's form (``to_map``, ``write_map``). See
:mod:`bids_w2v.spaces.base` for the interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nb

from bids_w2v.spaces.base import (
    CIFTI_SPACES,
    HEMIS,
    STRUCTURES,
    SURFACE_SPACES,
    MapSpace,
    SeriesInfo,
    SpaceKind,
    VertexSpace,
    file_kind,
    space_kind,
)
from bids_w2v.spaces.cifti import CiftiSpace, cifti_tr, dscalar_image, load_cifti, write_cifti
from bids_w2v.spaces.surface import (
    SurfaceSpace,
    gifti_map_image,
    gifti_series,
    gifti_tr,
    load_gifti,
    write_gifti,
)
from bids_w2v.spaces.volume import VolumeSpace, header_tr, intersect_run_masks

__all__ = [
    "CIFTI_SPACES",
    "HEMIS",
    "STRUCTURES",
    "SURFACE_SPACES",
    "CiftiSpace",
    "MapSpace",
    "SeriesInfo",
    "SpaceKind",
    "SurfaceSpace",
    "VertexSpace",
    "VolumeSpace",
    "as_space",
    "cifti_tr",
    "common_surface_space",
    "dscalar_image",
    "file_kind",
    "gifti_map_image",
    "gifti_series",
    "gifti_tr",
    "header_tr",
    "inspect_series",
    "intersect_run_masks",
    "load_cifti",
    "load_gifti",
    "load_map_space",
    "space_for",
    "space_kind",
    "space_of_file",
    "space_of_image",
    "write_cifti",
    "write_gifti",
]

_CLASSES: dict[str, type[MapSpace]] = {
    "volume": VolumeSpace,
    "surface": SurfaceSpace,
    "cifti": CiftiSpace,
}


def space_for(kind: str) -> type[MapSpace]:
    """The class of a kind of space (``volume``, ``surface``, ``cifti``, or an fMRIPrep space
    name such as ``fsaverage5``)."""
    return _CLASSES[kind if kind in _CLASSES else space_kind(kind)]


def space_of_file(path: Path | str) -> type[MapSpace]:
    """The class of the space a BOLD file or a map lies in, from its name."""
    return _CLASSES[file_kind(path)]


def space_of_image(img: object) -> type[MapSpace]:
    """The class of the space of a loaded map (GIfTI, CIFTI-2, else NIfTI)."""
    if isinstance(img, nb.GiftiImage):
        return SurfaceSpace
    if isinstance(img, nb.Cifti2Image):
        return CiftiSpace
    return VolumeSpace


def load_map_space(path: Path) -> MapSpace:
    """Read what :class:`~bids_w2v.interfaces.bold.BrainMask` wrote: a NIfTI mask
    (:class:`VolumeSpace`), a :class:`SurfaceSpace` (``.npz``) or a :class:`CiftiSpace`
    (``.dscalar.nii``)."""
    name = str(path)
    for cls in (SurfaceSpace, CiftiSpace):
        if name.endswith(cls.work_extension):
            return cls.read(Path(name))
    return VolumeSpace.read(Path(name))


def as_space(space: MapSpace | nb.Nifti1Image | Path | str) -> MapSpace:
    """A map space from a space, a NIfTI brain mask, or a file written by ``save``."""
    if isinstance(space, MapSpace):
        return space
    if isinstance(space, (str, Path)):
        return load_map_space(Path(space))
    return VolumeSpace(space)


def common_surface_space(runs: Sequence[Sequence[Path]], kind: SpaceKind) -> MapSpace:
    """Vertices (grayordinates) with a varying time series in every run.

    Parameters
    ----------
    runs : sequence of sequence of Path
        Per run, the ``(hemi-L, hemi-R)`` GIfTIs or the ``(dtseries,)``.
    kind : {"surface", "cifti"}
        Which.

    Returns
    -------
    SurfaceSpace or CiftiSpace
    """
    return space_for(kind).common(runs)


def inspect_series(files: Sequence[Path], kind: SpaceKind) -> SeriesInfo:
    """Scans, header TR and vertex layout of one run's GIfTI pair or CIFTI file."""
    return space_for(kind).inspect(files)
