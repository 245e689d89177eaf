"""CIFTI-2 grayordinates: read and write them, and the grayordinates modelled (:class:`CiftiSpace`).

fMRIPrep writes grayordinates as a CIFTI-2 dense time series
(``*_space-fsLR_den-91k_bold.dtseries.nii``). Grayordinates whose time series has zero
variance in any run are left out; maps are written back as a ``.dscalar.nii`` whose brain-model
axis is the input's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nb
import numpy as np
from nibabel import cifti2

from bids_w2v.errors import InputError
from bids_w2v.outputs.atomic import atomic_write
from bids_w2v.spaces.base import SeriesInfo, VertexSpace, varying

if TYPE_CHECKING:
    from bids.layout import BIDSFile, BIDSLayout


def load_cifti(path: Path) -> cifti2.Cifti2Image:
    """Load a CIFTI-2 dense time series, checking its axes."""
    try:
        img = nb.load(str(path))
    except Exception as exc:
        raise InputError(f"nibabel cannot read the CIFTI file {path}: {exc}.") from None
    if not isinstance(img, cifti2.Cifti2Image):
        raise InputError(f"{path} is not a CIFTI-2 file (nibabel read a {type(img).__name__}).")
    axes = [img.header.get_axis(i) for i in range(img.ndim)]
    if (
        len(axes) != 2
        or not isinstance(axes[0], cifti2.SeriesAxis)
        or not isinstance(axes[1], cifti2.BrainModelAxis)
    ):
        raise InputError(
            f"{path} is not a dense time series: its axes are "
            f"{[type(a).__name__ for a in axes]}, not (SeriesAxis, BrainModelAxis). Give the "
            "fMRIPrep *_bold.dtseries.nii."
        )
    return img


def cifti_tr(img: cifti2.Cifti2Image) -> float | None:
    """The TR from a CIFTI series axis (its step, in seconds), if it is a time axis."""
    series = img.header.get_axis(0)
    unit = str(series.unit).upper()
    if series.step is None or not series.step > 0 or unit not in ("SECOND", "MILLISECOND"):
        return None
    return float(series.step) * (1e-3 if unit == "MILLISECOND" else 1.0)


def dscalar_image(
    data: np.ndarray, names: Sequence[str], brain_models: cifti2.BrainModelAxis
) -> cifti2.Cifti2Image:
    """A CIFTI-2 dense scalar image: one row per name on ``brain_models``."""
    axes = (cifti2.ScalarAxis(list(names)), brain_models)
    img = cifti2.Cifti2Image(np.asarray(data, dtype=np.float32), header=axes)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS")
    return img


def write_cifti(path: Path, img: cifti2.Cifti2Image) -> Path:
    """Atomically write a CIFTI-2 image."""
    return atomic_write(path, lambda tmp: nb.save(img, str(tmp)), suffix=".nii")


@dataclass(frozen=True)
class CiftiSpace(VertexSpace):
    """Grayordinates kept from a CIFTI brain-model axis."""

    brain_models: cifti2.BrainModelAxis
    mask: np.ndarray  # bool per grayordinate

    kind = "cifti"
    extension = ".dscalar.nii"
    work_extension = ".dscalar.nii"
    form_description = "CIFTI .dscalar.nii"

    @staticmethod
    def bold_description(desc: str) -> str:
        """How the run's BOLD files are named, for error messages."""
        return "CIFTI BOLD (..._bold.dtseries.nii)"

    @property
    def n_features(self) -> int:
        """Number of grayordinates modelled."""
        return int(self.mask.sum())

    # -- the space of a participant --------------------------------------------------------

    @classmethod
    def common(
        cls, bold_files: Sequence[Sequence[Path]] = (), mask_files: Sequence[Path] = ()
    ) -> CiftiSpace:
        """Grayordinates with a varying time series in every run (per run, ``(dtseries,)``)."""
        first = [Path(f) for f in bold_files[0]]
        ref = load_cifti(first[0]).header.get_axis(1)
        mask = np.ones(len(ref), dtype=bool)
        for files in bold_files:
            img = load_cifti(files[0])
            if img.header.get_axis(1) != ref:
                raise InputError(
                    f"The CIFTI file {files[0]} has other grayordinates than {first[0]} "
                    f"({img.shape[1]} vs {len(ref)}). All runs must be in the same space and "
                    "density (e.g. fsLR den-91k)."
                )
            mask &= varying(np.asarray(img.get_fdata(dtype=np.float32)))
        return cls(ref, mask).check_not_empty(first)

    @classmethod
    def read(cls, path: Path) -> CiftiSpace:
        """Read a space written by :meth:`save` (``.dscalar.nii``)."""
        img = nb.load(str(path))
        return cls(img.header.get_axis(1), np.asarray(img.dataobj)[0] > 0)

    def save(self, path: Path) -> Path:
        """Write as a ``.dscalar.nii`` (1 = kept) with the input's brain-model axis."""
        img = dscalar_image(self.mask.astype(np.float32)[None], ["mask"], self.brain_models)
        img.to_filename(str(path))
        return Path(path)

    # -- series in, maps out ----------------------------------------------------------------

    def load(self, files: Sequence[Path]) -> np.ndarray:
        """One run's dense time series on the kept grayordinates: (n_scans, n_features)."""
        img = load_cifti(files[0])
        if img.shape[1] != self.mask.size:
            raise InputError(
                f"{files[0]} has {img.shape[1]} grayordinates, the participant's map space "
                f"{self.mask.size}. All runs must be in the same space and density."
            )
        return np.asarray(img.get_fdata(dtype=np.float32))[:, self.mask]

    def full(self, values: np.ndarray) -> np.ndarray:
        """Kept values on every grayordinate (NaN elsewhere; float32)."""
        out = np.full(self.mask.shape, np.nan, dtype=np.float32)
        out[self.mask] = values
        return out

    def to_map(self, values: np.ndarray, *, name: str = "") -> dict[str | None, Any]:
        """A one-row dense scalar image on the input's brain models."""
        return {None: dscalar_image(self.full(values)[None], [name], self.brain_models)}

    @staticmethod
    def write_map(img: cifti2.Cifti2Image, path: Path) -> Path:
        """Atomically write a CIFTI-2 image."""
        return write_cifti(path, img)

    # -- the runs' files --------------------------------------------------------------------

    @classmethod
    def find_bolds(
        cls, layout: BIDSLayout, desc: str, **query: object
    ) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
        """The dense time series of the query, one per run (den-91k if several densities).

        ``desc`` other than ``preproc`` is part of the query.
        """
        query = {**({} if desc == "preproc" else {"desc": desc}), **query}
        files = layout.get(scope="derivatives", suffix="bold", extension=".dtseries.nii", **query)
        dens = {f.get_entities().get("den") for f in files}
        if len(dens) > 1 and "91k" in dens:  # fMRIPrep --cifti-output 170k also writes 91k
            files = [f for f in files if f.get_entities().get("den") == "91k"]
        return [(f, (Path(f.path),)) for f in files]

    @classmethod
    def inspect(cls, files: Sequence[Path], mask: Path | None = None) -> SeriesInfo:
        """Scans, series-axis TR and brain models of one run's dense time series."""
        img = load_cifti(files[0])
        bm = img.header.get_axis(1)
        signature = tuple((str(name), len(part)) for name, _, part in bm.iter_structures())
        return SeriesInfo(int(img.shape[0]), cifti_tr(img), "CIFTI series axis", signature)

    @staticmethod
    def describe_layout(layout: tuple) -> str:
        """Grayordinates of the CIFTI structures, for error messages."""
        return f"{sum(n for _, n in layout)} grayordinates"

    @staticmethod
    def map_values(img: cifti2.Cifti2Image) -> np.ndarray:
        """The first row of a CIFTI map (float64)."""
        return np.asarray(img.dataobj, dtype=np.float64)[0]

    @staticmethod
    def map_like(
        values: np.ndarray, ref: cifti2.Cifti2Image, *, name: str = ""
    ) -> cifti2.Cifti2Image:
        """``values`` as a dense scalar map on the brain models of ``ref``."""
        values = np.asarray(values, dtype=np.float32)
        return dscalar_image(values[None], [name or "map"], ref.header.get_axis(1))

    # -- maps on disk (group level) ---------------------------------------------------------

    @classmethod
    def label_files(cls, atlas: Path) -> tuple[Path, ...]:
        """The ``.dlabel.nii`` of a ``--roi-atlas``."""
        if not atlas.name.endswith(".dlabel.nii"):
            raise InputError(
                f"The ROI atlas {atlas} (--roi-atlas) does not fit CIFTI maps: give a CIFTI "
                "label file (.dlabel.nii) on the maps' grayordinates."
            )
        return (atlas,)

    @classmethod
    def map_geometry(cls, files: Sequence[Path]) -> tuple[tuple, tuple, np.ndarray | None]:
        """Grayordinates of a dense scalar map."""
        cls.check_map_files(files)
        sizes = tuple(int(nb.load(str(f)).shape[-1]) for f in files)
        return (sum(sizes),), sizes, None

    @classmethod
    def same_geometry(cls, a: Any, b: Any) -> bool:
        """Whether two dense scalar maps have the same brain models."""
        axis = nb.load(str(a.files[0])).header.get_axis(1)
        return axis == nb.load(str(b.files[0])).header.get_axis(1)
