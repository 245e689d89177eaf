"""NIfTI volumes: the participant's brain mask as a map space (:class:`VolumeSpace`).

The mask is the intersection of fMRIPrep's per-run ``desc-brain_mask`` files (or ``--mask``),
or, when the derivatives have no mask (Le Petit Prince), nilearn's
``compute_multi_epi_mask`` of the runs. Maps are NIfTI volumes on the mask's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nb
import numpy as np

from bids_w2v.errors import InputError
from bids_w2v.outputs.atomic import write_nifti
from bids_w2v.spaces.base import MapSpace, SeriesInfo

if TYPE_CHECKING:
    from bids.layout import BIDSFile, BIDSLayout


def header_tr(img: nb.Nifti1Image) -> float | None:
    """The TR in seconds from a NIfTI header (pixdim[4] with its time unit), if set."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    return float(zooms[3]) * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)


def _same_grid(a: Any, b: Any) -> bool:
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=1e-3)


def intersect_run_masks(mask_files: Sequence[Path]) -> nb.Nifti1Image:
    """Intersect the brain masks of a participant's runs.

    Parameters
    ----------
    mask_files : sequence of Path
        One fMRIPrep ``desc-brain_mask`` per run.

    Returns
    -------
    Nifti1Image
        Voxels inside every run's mask.
    """
    from nilearn.masking import intersect_masks

    imgs = [nb.load(str(m)) for m in mask_files]
    ref = imgs[0]
    for path, img in zip(mask_files, imgs, strict=True):
        if not _same_grid(img, ref):
            raise InputError(
                f"The brain mask {path} is not on the same grid as {mask_files[0]} (shapes "
                f"{img.shape[:3]} vs {ref.shape[:3]}). All runs must be in the same space and "
                "resolution: choose one with --space SPACE:res-N."
            )
    mask = intersect_masks(imgs, threshold=1.0, connected=False) if len(imgs) > 1 else ref
    if not np.asarray(mask.dataobj).any():
        raise InputError(
            f"The brain masks {', '.join(str(m) for m in mask_files)} have no voxel in common."
        )
    return mask


class VolumeSpace(MapSpace):
    """Voxels of a NIfTI brain mask (non-zero voxels are modelled).

    Parameters
    ----------
    mask_img : Nifti1Image
        The brain mask, on the grid of the BOLD series.
    """

    kind = "volume"
    extension = ".nii.gz"
    work_extension = ".nii.gz"
    has_brain_mask = True
    form_description = "NIfTI volumes"

    def __init__(self, mask_img: nb.Nifti1Image) -> None:
        self.mask_img = mask_img

    @staticmethod
    def bold_description(desc: str) -> str:
        """How the run's BOLD files are named, for error messages."""
        return f"preprocessed BOLD (desc-{desc}_bold)"

    @property
    def mask(self) -> np.ndarray:
        """Boolean 3-D array of the modelled voxels."""
        return np.asarray(self.mask_img.dataobj) > 0

    @property
    def n_features(self) -> int:
        """Number of voxels modelled."""
        return int(self.mask.sum())

    # -- the space of a participant --------------------------------------------------------

    @classmethod
    def common(
        cls, bold_files: Sequence[Sequence[Path]] = (), mask_files: Sequence[Path] = ()
    ) -> VolumeSpace:
        """The run masks intersected, or nilearn's EPI mask of the runs when none is given."""
        if mask_files:
            return cls(intersect_run_masks(list(mask_files)))
        from nilearn.masking import compute_multi_epi_mask

        runs = [str(f) for files in bold_files for f in files]
        return cls(compute_multi_epi_mask(runs, threshold=1.0))

    @classmethod
    def mask_inputs(cls, runs: Sequence[Any]) -> dict[str, list]:
        """The runs' masks when every run has one, else their BOLD files."""
        if all(r.mask is not None for r in runs):
            return {"mask_files": [str(r.mask) for r in runs]}
        return super().mask_inputs(runs)

    @classmethod
    def mask_method(cls, runs: Sequence[Any]) -> str:
        """How the mask of these runs is made (the sidecars' ``BrainMask``)."""
        if any(r.mask is None for r in runs):
            return "nilearn compute_multi_epi_mask"
        return "intersection of the run masks"

    @classmethod
    def read(cls, path: Path) -> VolumeSpace:
        """Read a NIfTI mask."""
        return cls(nb.load(str(path)))

    def save(self, path: Path) -> Path:
        """Write the mask as a NIfTI."""
        self.mask_img.to_filename(str(path))
        return Path(path)

    # -- series in, maps out ----------------------------------------------------------------

    def load(self, files: Sequence[Path]) -> np.ndarray:
        """The in-mask voxels of one run's NIfTI: (n_scans, n_voxels) float32."""
        from nilearn.masking import apply_mask

        img = nb.load(str(files[0]))
        if not _same_grid(img, self.mask_img):
            raise InputError(
                f"The BOLD series {files[0]} (grid {img.shape[:3]}) and its brain mask (grid "
                f"{self.mask_img.shape[:3]}) are on different grids. Use the mask fMRIPrep "
                "wrote for the same space and resolution."
            )
        return np.asarray(apply_mask(img, self.mask_img), dtype=np.float32)

    def full(self, values: np.ndarray) -> np.ndarray:
        """In-mask values in a 3-D array (NaN outside the mask; float32)."""
        mask = self.mask
        vol = np.full(mask.shape, np.nan, dtype=np.float32)
        vol[mask] = values
        return vol

    def to_map(self, values: np.ndarray, *, name: str = "") -> dict[str | None, Any]:
        """In-mask values as a float32 NIfTI on the mask's grid (NaN outside)."""
        header = self.mask_img.header.copy()
        header.set_data_dtype(np.float32)
        return {None: nb.Nifti1Image(self.full(values), self.mask_img.affine, header)}

    def from_map(self, img: nb.Nifti1Image) -> np.ndarray:
        """In-mask values of a 3-D image (float64)."""
        return np.asarray(img.dataobj, dtype=np.float64)[self.mask]

    @staticmethod
    def write_map(img: nb.Nifti1Image, path: Path) -> Path:
        """Atomically write a NIfTI."""
        return write_nifti(path, img)

    # -- the runs' files --------------------------------------------------------------------

    @classmethod
    def find_bolds(
        cls, layout: BIDSLayout, desc: str, **query: object
    ) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
        """The ``desc-<desc>_bold`` NIfTIs of the query, one per run."""
        files = layout.get(
            scope="derivatives", suffix="bold", desc=desc, extension=[".nii.gz", ".nii"], **query
        )
        return [(f, (Path(f.path),)) for f in files]

    @classmethod
    def inspect(cls, files: Sequence[Path], mask: Path | None = None) -> SeriesInfo:
        """Scans, header TR and grid of one run's NIfTI, checked against its mask."""
        bold = files[0]
        img = nb.load(str(bold))
        if img.ndim != 4:
            raise InputError(f"{bold} is not a 4-D BOLD series (shape {img.shape}).")
        mask_img = nb.load(str(mask)) if mask is not None else img
        if not _same_grid(mask_img, img):
            raise InputError(
                f"The brain mask {mask} (grid {mask_img.shape[:3]}) is not on the grid of "
                f"its BOLD series {bold} (grid {img.shape[:3]}, or another affine). Use the "
                "mask fMRIPrep wrote for the same space and resolution."
            )
        grid = (tuple(img.shape[:3]), tuple(np.round(img.affine, 3).ravel()))
        return SeriesInfo(int(img.shape[3]), header_tr(img), "NIfTI header", grid)

    @classmethod
    def layout_error(
        cls, bold: Path, info: SeriesInfo, first: tuple, first_name: str, space: str
    ) -> InputError:
        """A run on another voxel grid than the first run."""
        return InputError(
            f"The BOLD series {bold} (grid {info.layout[0]}) is not on the grid of "
            f"{first_name} (grid {first[0]}, or another affine). All runs "
            f"must be in the same space and resolution: choose one with --space "
            f"{space}:res-N, or re-run fMRIPrep with one --output-spaces."
        )

    @classmethod
    def count_features(cls, files: Sequence[Path], mask: Path | None = None) -> int:
        """Voxels in the mask, or in the whole grid of the BOLD without a mask."""
        if mask is not None:
            return int(np.count_nonzero(np.asarray(nb.load(str(mask)).dataobj)))
        return int(np.prod(nb.load(str(files[0])).shape[:3]))

    @staticmethod
    def map_values(img: nb.Nifti1Image) -> np.ndarray:
        """The values of a NIfTI map: its 3-D array (float64)."""
        return np.asarray(img.dataobj, dtype=np.float64)

    @staticmethod
    def map_like(values: np.ndarray, ref: nb.Nifti1Image, *, name: str = "") -> nb.Nifti1Image:
        """``values`` (float32) as a NIfTI with the geometry and header of ``ref``."""
        header = ref.header.copy()
        header.set_data_dtype(np.float32)
        return nb.Nifti1Image(np.asarray(values, dtype=np.float32), ref.affine, header)

    # -- maps on disk (group level) ---------------------------------------------------------

    @classmethod
    def map_geometry(cls, files: Sequence[Path]) -> tuple[tuple, tuple, np.ndarray | None]:
        """The 3-D shape, its number of voxels and the affine of a NIfTI map."""
        img = nb.load(str(files[0]))
        return tuple(img.shape[:3]), (int(np.prod(img.shape[:3])),), img.affine

    @classmethod
    def same_geometry(cls, a: Any, b: Any) -> bool:
        """Whether two NIfTI map grids have the same affine."""
        return bool(np.allclose(a.affine, b.affine, atol=1e-3))
