"""GIfTI surfaces and CIFTI dense time series: find, read and write them (nibabel).

fMRIPrep writes surface BOLD as one GIfTI per hemisphere (``*_hemi-L_space-fsaverage5_bold
.func.gii`` since 21.0; ``*_space-fsaverage5_hemi-L_bold.func.gii`` in 20.2 and
``*_space-fsaverage5_hemi-L.func.gii`` before) and grayordinates as a CIFTI-2 dense time series
(``*_space-fsLR_den-91k_bold.dtseries.nii``). Surfaces have no brain mask: vertices whose time
series has zero variance in any run (the medial wall, which fMRIPrep fills with zeros) are left
out. Brain-score maps are written back in the input's form: one ``.func.gii`` per hemisphere,
or a ``.dscalar.nii`` whose brain-model axis is the input's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import nibabel as nb
import numpy as np
from nibabel import cifti2

from bids_w2v.errors import InputError
from bids_w2v.outputs.atomic import atomic_write

if TYPE_CHECKING:  # pybids is needed only by find_surface_bolds' caller
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


def map_extension(kind: SpaceKind) -> str:
    """File extension of a brain map in a space of this kind."""
    return {"volume": ".nii.gz", "surface": ".func.gii", "cifti": ".dscalar.nii"}[kind]


# --------------------------------------------------------------------------------------------
# reading


def _gifti_tr(img: nb.GiftiImage) -> float | None:
    """The TR from GIfTI ``TimeStep`` metadata (file or first data array), if any.

    Workbench writes seconds; FreeSurfer writes milliseconds: values above 50 are read as ms.
    """
    metas = [img.meta] + ([img.darrays[0].meta] if img.darrays else [])
    for meta in metas:
        value = dict(meta).get("TimeStep")
        if value is None:
            continue
        try:
            step = float(value)
        except ValueError:
            return None
        if step > 0:
            return step / 1000.0 if step > 50 else step
    return None


def load_gifti(path: Path) -> nb.GiftiImage:
    """Load a GIfTI, raising :class:`InputError` if nibabel cannot read it."""
    try:
        img = nb.load(str(path))
    except Exception as exc:  # nibabel raises several types for broken XML / base64
        raise InputError(f"nibabel cannot read the GIfTI file {path}: {exc}.") from None
    if not isinstance(img, nb.GiftiImage) or not img.darrays:
        raise InputError(f"{path} is not a GIfTI functional file with data arrays.")
    return img


def gifti_series(img: nb.GiftiImage, path: Path) -> np.ndarray:
    """A GIfTI time series as (n_scans, n_vertices) float32."""
    data = img.agg_data()
    data = np.asarray(data if isinstance(data, np.ndarray) else np.column_stack(data))
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise InputError(f"{path} holds arrays of shape {data.shape}, not a time series.")
    return np.ascontiguousarray(data.T, dtype=np.float32)


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


@dataclass(frozen=True)
class SeriesInfo:
    """What :func:`inspect_series` learns from a run's surface files without cleaning them."""

    n_scans: int
    header_tr: float | None
    tr_source: str
    layout: tuple  # vertices per hemisphere, or the CIFTI brain models (for cross-run checks)


def inspect_series(files: Sequence[Path], kind: SpaceKind) -> SeriesInfo:
    """Scans, header TR and vertex layout of one run's GIfTI pair or CIFTI file.

    Parameters
    ----------
    files : sequence of Path
        ``(hemi-L, hemi-R)`` GIfTIs, or ``(dtseries,)``.
    kind : {"surface", "cifti"}
        Which.

    Returns
    -------
    SeriesInfo
    """
    if kind == "cifti":
        img = load_cifti(files[0])
        bm = img.header.get_axis(1)
        signature = tuple((str(name), len(part)) for name, _, part in bm.iter_structures())
        return SeriesInfo(int(img.shape[0]), cifti_tr(img), "CIFTI series axis", signature)
    imgs = [load_gifti(f) for f in files]
    counts = [len(img.darrays) for img in imgs]
    if counts[0] != counts[1]:
        raise InputError(
            f"The hemispheres of one run have different numbers of volumes: {files[0]} has "
            f"{counts[0]}, {files[1]} has {counts[1]}. Both must come from the same fMRIPrep "
            "run; re-run fMRIPrep or restore the files."
        )
    vertices = tuple(int(img.darrays[0].data.shape[0]) for img in imgs)
    trs = [_gifti_tr(img) for img in imgs]
    return SeriesInfo(counts[0], trs[0] or trs[1], "GIfTI TimeStep metadata", vertices)


# --------------------------------------------------------------------------------------------
# the map space: which vertices/grayordinates are modelled, and how maps are written back


@dataclass(frozen=True)
class SurfaceSpace:
    """Vertices kept in each hemisphere of a GIfTI surface."""

    masks: tuple[np.ndarray, np.ndarray]  # bool per vertex, (L, R)

    @property
    def n_features(self) -> int:
        """Number of vertices modelled (both hemispheres)."""
        return int(sum(m.sum() for m in self.masks))

    def select(self, series: Sequence[np.ndarray]) -> np.ndarray:
        """Kept vertices of per-hemisphere (n_scans, n_vertices) arrays, L then R."""
        return np.concatenate([s[:, m] for s, m in zip(series, self.masks, strict=True)], axis=1)

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Place kept-vertex values on each hemisphere's full mesh (NaN elsewhere; float32)."""
        out, start = {}, 0
        for hemi, mask in zip(HEMIS, self.masks, strict=True):
            full = np.full(mask.shape, np.nan, dtype=np.float32)
            full[mask] = values[start : start + mask.sum()]
            start += int(mask.sum())
            out[hemi] = full
        return out

    def save(self, path: Path) -> Path:
        """Write as ``.npz`` (work-directory file)."""
        np.savez(path, L=self.masks[0], R=self.masks[1])
        return Path(path)


@dataclass(frozen=True)
class CiftiSpace:
    """Grayordinates kept from a CIFTI brain-model axis."""

    brain_models: cifti2.BrainModelAxis
    mask: np.ndarray  # bool per grayordinate

    @property
    def n_features(self) -> int:
        """Number of grayordinates modelled."""
        return int(self.mask.sum())

    def full(self, values: np.ndarray) -> np.ndarray:
        """Kept values on every grayordinate (NaN elsewhere; float32)."""
        out = np.full(self.mask.shape, np.nan, dtype=np.float32)
        out[self.mask] = values
        return out

    def save(self, path: Path) -> Path:
        """Write as a ``.dscalar.nii`` (1 = kept) with the input's brain-model axis."""
        img = dscalar_image(self.mask.astype(np.float32)[None], ["mask"], self.brain_models)
        img.to_filename(str(path))
        return Path(path)


def load_map_space(path: Path) -> nb.Nifti1Image | SurfaceSpace | CiftiSpace:
    """Read what :class:`~bids_w2v.interfaces.bold.BrainMask` wrote: a NIfTI mask, a
    :class:`SurfaceSpace` (``.npz``) or a :class:`CiftiSpace` (``.dscalar.nii``)."""
    name = str(path)
    if name.endswith(".npz"):
        with np.load(name) as data:
            return SurfaceSpace((data["L"].astype(bool), data["R"].astype(bool)))
    if name.endswith(".dscalar.nii"):
        img = nb.load(name)
        return CiftiSpace(img.header.get_axis(1), np.asarray(img.dataobj)[0] > 0)
    return nb.load(name)


def _varying(data: np.ndarray) -> np.ndarray:
    """Columns with a finite, non-constant time series."""
    finite = np.isfinite(data).all(axis=0)
    return finite & (np.nanmax(data, axis=0) > np.nanmin(data, axis=0))


def common_surface_space(
    runs: Sequence[Sequence[Path]], kind: SpaceKind
) -> SurfaceSpace | CiftiSpace:
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
    first = [Path(f) for f in runs[0]]
    if kind == "cifti":
        ref = load_cifti(first[0]).header.get_axis(1)
        mask = np.ones(len(ref), dtype=bool)
        for files in runs:
            img = load_cifti(files[0])
            if img.header.get_axis(1) != ref:
                raise InputError(
                    f"The CIFTI file {files[0]} has other grayordinates than {first[0]} "
                    f"({img.shape[1]} vs {len(ref)}). All runs must be in the same space and "
                    "density (e.g. fsLR den-91k)."
                )
            mask &= _varying(np.asarray(img.get_fdata(dtype=np.float32)))
        space: SurfaceSpace | CiftiSpace = CiftiSpace(ref, mask)
    else:
        masks: list[np.ndarray | None] = [None, None]
        for files in runs:
            for h, path in enumerate(files):
                data = gifti_series(load_gifti(path), path)
                keep = _varying(data)
                if masks[h] is not None and masks[h].shape != keep.shape:
                    raise InputError(
                        f"The GIfTI {path} has {keep.size} vertices but {first[h]} has "
                        f"{masks[h].size}: all runs must be on the same surface mesh (the same "
                        "--space; fsnative meshes differ between participants)."
                    )
                masks[h] = keep if masks[h] is None else masks[h] & keep
        space = SurfaceSpace((masks[0], masks[1]))
    if space.n_features == 0:
        raise InputError(
            f"No vertex of {', '.join(str(f) for f in first)} varies in time in every run: the "
            "surface BOLD files hold constant data. Check the fMRIPrep outputs."
        )
    return space


def load_surface_bold(files: Sequence[Path], space: SurfaceSpace | CiftiSpace) -> np.ndarray:
    """One run's surface BOLD restricted to ``space``: (n_scans, n_features) float32."""
    if isinstance(space, CiftiSpace):
        img = load_cifti(files[0])
        if img.shape[1] != space.mask.size:
            raise InputError(
                f"{files[0]} has {img.shape[1]} grayordinates, the participant's map space "
                f"{space.mask.size}. All runs must be in the same space and density."
            )
        return np.asarray(img.get_fdata(dtype=np.float32))[:, space.mask]
    series = [gifti_series(load_gifti(f), f) for f in files]
    for path, data, mask in zip(files, series, space.masks, strict=True):
        if data.shape[1] != mask.size:
            raise InputError(
                f"{path} has {data.shape[1]} vertices, the participant's surface "
                f"{mask.size}. All runs must be on the same surface mesh."
            )
    return space.select(series)


# --------------------------------------------------------------------------------------------
# writing


def gifti_map_image(values: np.ndarray, hemi: str, *, name: str) -> nb.GiftiImage:
    """A one-map GIfTI (float32) tagged with its hemisphere."""
    meta = nb.gifti.GiftiMetaData({"AnatomicalStructurePrimary": STRUCTURES[hemi]})
    darray = nb.gifti.GiftiDataArray(
        np.asarray(values, dtype=np.float32),
        intent="NIFTI_INTENT_ESTIMATE",
        datatype="NIFTI_TYPE_FLOAT32",
        meta=nb.gifti.GiftiMetaData({"Name": name}),
    )
    return nb.GiftiImage(darrays=[darray], meta=meta)


def dscalar_image(
    data: np.ndarray, names: Sequence[str], brain_models: cifti2.BrainModelAxis
) -> cifti2.Cifti2Image:
    """A CIFTI-2 dense scalar image: one row per name on ``brain_models``."""
    axes = (cifti2.ScalarAxis(list(names)), brain_models)
    img = cifti2.Cifti2Image(np.asarray(data, dtype=np.float32), header=axes)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS")
    return img


def write_gifti(path: Path, img: nb.GiftiImage) -> Path:
    """Atomically write a GIfTI image."""
    return atomic_write(path, lambda tmp: nb.save(img, str(tmp)), suffix=".gii")


def write_cifti(path: Path, img: cifti2.Cifti2Image) -> Path:
    """Atomically write a CIFTI-2 image."""
    return atomic_write(path, lambda tmp: nb.save(img, str(tmp)), suffix=".nii")


# --------------------------------------------------------------------------------------------
# finding the files with pybids


def _run_key(entities: dict) -> tuple:
    drop = {"hemi", "suffix", "extension", "datatype"}
    return tuple(sorted((k, str(v)) for k, v in entities.items() if k not in drop))


def find_surface_bolds(
    layout: BIDSLayout, kind: SpaceKind, **query: object
) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
    """fMRIPrep surface BOLD of one subject, task and space, grouped by run.

    GIfTIs are accepted under the names of every fMRIPrep release (``hemi-L_space-X_bold``,
    ``space-X_hemi-L_bold``, ``space-X_hemi-L``); pybids parses all three. Both hemispheres
    are required.

    Parameters
    ----------
    layout : BIDSLayout
        With the fMRIPrep derivatives.
    kind : {"surface", "cifti"}
        GIfTI pairs or CIFTI dense time series.
    **query
        pybids entities (subject, task, space...).

    Returns
    -------
    list of (BIDSFile, tuple of Path)
        Per run, the file whose entities describe it (hemi-L for GIfTI) and the run's files
        (``(hemi-L, hemi-R)`` or ``(dtseries,)``).
    """
    if kind == "cifti":
        files = layout.get(scope="derivatives", suffix="bold", extension=".dtseries.nii", **query)
        dens = {f.get_entities().get("den") for f in files}
        if len(dens) > 1 and "91k" in dens:  # fMRIPrep --cifti-output 170k also writes 91k
            files = [f for f in files if f.get_entities().get("den") == "91k"]
        return [(f, (Path(f.path),)) for f in files]
    files = [
        f
        for f in layout.get(scope="derivatives", extension=".func.gii", **query)
        if f.get_entities().get("suffix") in (None, "bold") and f.get_entities().get("hemi")
    ]
    runs: dict[tuple, dict[str, list]] = {}
    for f in files:
        ent = f.get_entities()
        runs.setdefault(_run_key(ent), {}).setdefault(str(ent["hemi"]), []).append(f)
    out = []
    for hemis in runs.values():
        for hemi, found in hemis.items():
            if len(found) > 1:
                raise InputError(
                    f"Several GIfTI files hold hemisphere {hemi} of one run: "
                    f"{', '.join(f.filename for f in found)} (fMRIPrep releases name them "
                    "differently). Keep the outputs of one fMRIPrep run only."
                )
        missing = [h for h in HEMIS if h not in hemis]
        if missing:
            present = next(iter(hemis.values()))[0]
            raise InputError(
                f"Only one hemisphere of a surface run was found: {present.path} has no "
                f"hemi-{missing[0]} counterpart. bids-w2v models both hemispheres; restore the "
                f"hemi-{missing[0]} file fMRIPrep wrote (same name with hemi-{missing[0]})."
            )
        left, right = hemis["L"][0], hemis["R"][0]
        out.append((left, (Path(left.path), Path(right.path))))
    return sorted(out, key=lambda pair: pair[0].path)


def count_vertices(files: Sequence[Path]) -> int:
    """Vertices (grayordinates) of one run's GIfTI pair or CIFTI file."""
    total = 0
    for path in files:
        img = nb.load(str(path))
        if isinstance(img, nb.GiftiImage):
            total += int(img.darrays[0].data.shape[0])
        else:
            total += int(img.shape[-1])
    return total
