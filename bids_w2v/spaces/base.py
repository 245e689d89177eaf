"""What every map space offers: the kind of a space, and the interface of the space classes.

A map space is the set of voxels, vertices or grayordinates a participant is modelled on.
:class:`~bids_w2v.spaces.volume.VolumeSpace` (a NIfTI brain mask),
:class:`~bids_w2v.spaces.surface.SurfaceSpace` (GIfTI vertices per hemisphere) and
:class:`~bids_w2v.spaces.cifti.CiftiSpace` (CIFTI grayordinates) share one interface:
``common`` (the space of several runs), ``load`` (a run's series in the space), ``to_map`` and
``write_map`` (values back as images in the input's form), ``save`` / ``read`` (the space
itself, as a work file), plus class-level helpers to find and inspect the runs' files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import nibabel as nb
import numpy as np

from bids_w2v.errors import InputError

if TYPE_CHECKING:  # pybids is needed only by find_bolds' caller
    from bids.layout import BIDSFile, BIDSLayout

SURFACE_SPACES = ("fsnative", "fsaverage", "fsaverage3", "fsaverage4", "fsaverage5", "fsaverage6")
CIFTI_SPACES = ("fsLR",)
HEMIS = ("L", "R")
STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}
SpaceKind = Literal["volume", "surface", "cifti"]


def space_kind(space: str) -> SpaceKind:
    """Whether fMRIPrep's ``space`` holds volumes, GIfTI surfaces or CIFTI grayordinates."""
    if space in SURFACE_SPACES:
        return "surface"
    if space in CIFTI_SPACES:
        return "cifti"
    return "volume"


def file_kind(path: Path | str) -> SpaceKind:
    """The kind of space of a BOLD file or map from its name (``.func.gii``: surface,
    ``.dtseries.nii`` / ``.dscalar.nii``: CIFTI, anything else: volume)."""
    name = Path(path).name
    if name.endswith(".func.gii"):
        return "surface"
    if name.endswith((".dtseries.nii", ".dscalar.nii")):
        return "cifti"
    return "volume"


@dataclass(frozen=True)
class SeriesInfo:
    """What a space class learns from one run's files without cleaning them."""

    n_scans: int
    header_tr: float | None
    tr_source: str
    layout: tuple  # voxel grid, vertices per hemisphere or CIFTI brain models (cross-run checks)


def varying(data: np.ndarray) -> np.ndarray:
    """Columns with a finite, non-constant time series."""
    finite = np.isfinite(data).all(axis=0)
    return finite & (np.nanmax(data, axis=0) > np.nanmin(data, axis=0))


class MapSpace(ABC):
    """The interface of the three map spaces (see the module's docstring).

    Class attributes
    ----------------
    kind : {"volume", "surface", "cifti"}
        The kind of space.
    extension : str
        Extension of the maps written in this space (``.nii.gz``, ``.func.gii``...).
    work_extension : str
        Extension of the space's own work file (:meth:`save`).
    hemis : tuple
        The hemisphere entity of each file of a map (``(None,)``: one file).
    has_brain_mask : bool
        Whether runs come with a brain mask file (volumes).
    form_description : str
        The form of the maps, in words (reports).
    roi_atlas_help : str
        What ``--roi-atlas`` takes for maps in this space, when it is not a label NIfTI.
    """

    kind: ClassVar[SpaceKind]
    extension: ClassVar[str]
    work_extension: ClassVar[str]
    hemis: ClassVar[tuple[str | None, ...]] = (None,)
    has_brain_mask: ClassVar[bool] = False
    form_description: ClassVar[str]
    roi_atlas_help: ClassVar[str] = ""

    @staticmethod
    @abstractmethod
    def bold_description(desc: str) -> str:
        """How the run's BOLD files are named (``desc`` label), for error messages."""

    # -- the space of a participant --------------------------------------------------------

    @classmethod
    @abstractmethod
    def common(
        cls, bold_files: Sequence[Sequence[Path]] = (), mask_files: Sequence[Path] = ()
    ) -> MapSpace:
        """The space shared by a participant's runs (their BOLD files, or their masks)."""

    @classmethod
    def mask_inputs(cls, runs: Sequence[Any]) -> dict[str, list]:
        """What :meth:`common` needs of these runs (``RunInputs``): their BOLD files."""
        return {"bold_files": [[str(f) for f in r.data_files] for r in runs]}

    @classmethod
    def common_of_runs(cls, runs: Sequence[Any]) -> MapSpace:
        """:meth:`common` of these runs (``RunInputs``)."""
        return cls.common(**cls.mask_inputs(runs))

    @classmethod
    @abstractmethod
    def mask_method(cls, runs: Sequence[Any]) -> str:
        """How :meth:`common` makes the space of these runs (the sidecars' ``BrainMask``)."""

    @classmethod
    @abstractmethod
    def read(cls, path: Path) -> MapSpace:
        """Read a space written by :meth:`save`."""

    @abstractmethod
    def save(self, path: Path) -> Path:
        """Write the space as a work file (``work_extension``)."""

    @property
    @abstractmethod
    def n_features(self) -> int:
        """Number of voxels, vertices or grayordinates modelled."""

    # -- series in, maps out ----------------------------------------------------------------

    @abstractmethod
    def load(self, files: Sequence[Path]) -> np.ndarray:
        """One run's BOLD restricted to the space: (n_scans, n_features) float32."""

    @abstractmethod
    def full(self, values: np.ndarray) -> np.ndarray:
        """In-space values on the whole map as one float32 array (NaN elsewhere): the 3-D
        volume, the left then the right hemisphere's vertices, or the grayordinates."""

    @abstractmethod
    def to_map(self, values: np.ndarray, *, name: str = "") -> dict[str | None, Any]:
        """In-space values as images in the input's form, by hemisphere (``None``: one)."""

    @staticmethod
    @abstractmethod
    def write_map(img: Any, path: Path) -> Path:
        """Atomically write one image made by :meth:`to_map`."""

    # -- the runs' files --------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def find_bolds(
        cls, layout: BIDSLayout, desc: str, **query: object
    ) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
        """Per run, the file whose entities describe it and the run's BOLD files."""

    @classmethod
    @abstractmethod
    def inspect(cls, files: Sequence[Path], mask: Path | None = None) -> SeriesInfo:
        """Scans, header TR and layout of one run's files (checked against its mask)."""

    @classmethod
    @abstractmethod
    def layout_error(cls, bold: Path, info: SeriesInfo, first: tuple, first_name: str, space: str):
        """The :class:`~bids_w2v.errors.InputError` of a run whose layout differs from the
        first run's (``first``, of the file ``first_name``)."""

    @classmethod
    @abstractmethod
    def count_features(cls, files: Sequence[Path], mask: Path | None = None) -> int:
        """Voxels in the mask, or vertices of the files (an upper bound of the space)."""

    # -- maps on disk (group level) ---------------------------------------------------------

    @staticmethod
    @abstractmethod
    def map_values(img: Any) -> np.ndarray:
        """The values of one loaded map file (float64)."""

    @staticmethod
    @abstractmethod
    def map_like(values: np.ndarray, ref: Any, *, name: str = "") -> Any:
        """``values`` as an image of the form and geometry of the loaded map ``ref``."""

    @classmethod
    def map_files(cls, path: Path) -> tuple[Path, ...]:
        """The files of one map named by ``path``."""
        return (Path(path),)

    @classmethod
    @abstractmethod
    def map_geometry(cls, files: Sequence[Path]) -> tuple[tuple, tuple, np.ndarray | None]:
        """Shape of a map's values, values per file, and affine (volumes) of a map's files."""

    @classmethod
    def same_geometry(cls, a: Any, b: Any) -> bool:
        """Whether two map grids (:class:`~bids_w2v.group.collection.MapGrid`) of equal shapes
        lie on the same grid (affine, brain models)."""
        return True


class VertexSpace(MapSpace):
    """What GIfTI surfaces and CIFTI grayordinates share: no brain mask, vertices whose time
    series varies in every run are modelled."""

    roi_atlas_help = (
        "on surfaces --roi-atlas takes a GIfTI label file per hemisphere, the hemi-L one "
        "given, or a CIFTI .dlabel.nii"
    )

    @classmethod
    def mask_method(cls, runs: Sequence[Any]) -> str:
        """How the space of these runs is made (the sidecars' ``BrainMask``)."""
        return "vertices with a varying signal in every run"

    @staticmethod
    @abstractmethod
    def describe_layout(layout: tuple) -> str:
        """A run's layout (:attr:`SeriesInfo.layout`) in words, for error messages."""

    @classmethod
    def layout_error(
        cls, bold: Path, info: SeriesInfo, first: tuple, first_name: str, space: str
    ) -> InputError:
        """A run on another mesh or density than the first run."""
        return InputError(
            f"The surface files of {Path(bold).name} do not have the vertices of "
            f"{first_name} ({cls.describe_layout(info.layout)} vs "
            f"{cls.describe_layout(first)}). All runs must be on the same "
            "surface mesh or CIFTI density; re-run fMRIPrep with one --output-spaces."
        )

    def check_not_empty(self, first: Sequence[Path]) -> VertexSpace:
        """This space, if it keeps a vertex of the runs (the first run's ``first`` files)."""
        if self.n_features == 0:
            raise InputError(
                f"No vertex of {', '.join(str(f) for f in first)} varies in time in every run: "
                "the surface BOLD files hold constant data. Check the fMRIPrep outputs."
            )
        return self

    @classmethod
    @abstractmethod
    def label_files(cls, atlas: Path) -> tuple[Path, ...]:
        """The label files of an ROI atlas for maps in this space (one per map file)."""

    @staticmethod
    def check_map_files(files: Sequence[Path]) -> None:
        """Raise if a file of a surface map is missing."""
        for f in files:
            if not f.exists():
                raise InputError(
                    f"{f} is missing: a surface map has one GIfTI per hemisphere. Re-run the "
                    "participant level, or restore the file."
                )

    @classmethod
    def count_features(cls, files: Sequence[Path], mask: Path | None = None) -> int:
        """Vertices (grayordinates) of one run's files."""
        total = 0
        for path in files:
            img = nb.load(str(path))
            if isinstance(img, nb.GiftiImage):
                total += int(img.darrays[0].data.shape[0])
            else:
                total += int(img.shape[-1])
        return total
