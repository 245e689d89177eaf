"""GIfTI surfaces: read and write them, and the vertices modelled (:class:`SurfaceSpace`).

fMRIPrep writes surface BOLD as one GIfTI per hemisphere (``*_hemi-L_space-fsaverage5_bold
.func.gii`` since 21.0; ``*_space-fsaverage5_hemi-L_bold.func.gii`` in 20.2 and
``*_space-fsaverage5_hemi-L.func.gii`` before). Surfaces have no brain mask: vertices whose
time series has zero variance in any run (the medial wall, which fMRIPrep fills with zeros) are
left out. Maps are written back as one ``.func.gii`` per hemisphere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nb
import numpy as np

from bids_w2v.errors import InputError
from bids_w2v.outputs.atomic import atomic_write
from bids_w2v.spaces.base import HEMIS, STRUCTURES, SeriesInfo, VertexSpace, varying

if TYPE_CHECKING:
    from bids.layout import BIDSFile, BIDSLayout


def gifti_tr(img: nb.GiftiImage) -> float | None:
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


def write_gifti(path: Path, img: nb.GiftiImage) -> Path:
    """Atomically write a GIfTI image."""
    return atomic_write(path, lambda tmp: nb.save(img, str(tmp)), suffix=".gii")


def _run_key(entities: dict) -> tuple:
    drop = {"hemi", "suffix", "extension", "datatype"}
    return tuple(sorted((k, str(v)) for k, v in entities.items() if k not in drop))


@dataclass(frozen=True)
class SurfaceSpace(VertexSpace):
    """Vertices kept in each hemisphere of a GIfTI surface."""

    masks: tuple[np.ndarray, np.ndarray]  # bool per vertex, (L, R)

    kind = "surface"
    extension = ".func.gii"
    work_extension = ".npz"
    hemis = HEMIS
    form_description = "GIfTI, one .func.gii per hemisphere"

    @staticmethod
    def bold_description(desc: str) -> str:
        """How the run's BOLD files are named, for error messages."""
        return "surface BOLD (hemi-L/hemi-R ..._bold.func.gii)"

    @property
    def n_features(self) -> int:
        """Number of vertices modelled (both hemispheres)."""
        return int(sum(m.sum() for m in self.masks))

    # -- the space of a participant --------------------------------------------------------

    @classmethod
    def common(
        cls, bold_files: Sequence[Sequence[Path]] = (), mask_files: Sequence[Path] = ()
    ) -> SurfaceSpace:
        """Vertices with a varying time series in every run (per run, the GIfTI pair)."""
        first = [Path(f) for f in bold_files[0]]
        masks: list[np.ndarray | None] = [None, None]
        for files in bold_files:
            for h, path in enumerate(files):
                keep = varying(gifti_series(load_gifti(path), path))
                if masks[h] is not None and masks[h].shape != keep.shape:
                    raise InputError(
                        f"The GIfTI {path} has {keep.size} vertices but {first[h]} has "
                        f"{masks[h].size}: all runs must be on the same surface mesh (the same "
                        "--space; fsnative meshes differ between participants)."
                    )
                masks[h] = keep if masks[h] is None else masks[h] & keep
        return cls((masks[0], masks[1])).check_not_empty(first)

    @classmethod
    def read(cls, path: Path) -> SurfaceSpace:
        """Read a space written by :meth:`save` (``.npz``)."""
        with np.load(str(path)) as data:
            return cls((data["L"].astype(bool), data["R"].astype(bool)))

    def save(self, path: Path) -> Path:
        """Write as ``.npz`` (work-directory file)."""
        np.savez(path, L=self.masks[0], R=self.masks[1])
        return Path(path)

    # -- series in, maps out ----------------------------------------------------------------

    def select(self, series: Sequence[np.ndarray]) -> np.ndarray:
        """Kept vertices of per-hemisphere (n_scans, n_vertices) arrays, L then R."""
        return np.concatenate([s[:, m] for s, m in zip(series, self.masks, strict=True)], axis=1)

    def load(self, files: Sequence[Path]) -> np.ndarray:
        """One run's GIfTI pair on the kept vertices: (n_scans, n_features) float32."""
        series = [gifti_series(load_gifti(f), f) for f in files]
        for path, data, mask in zip(files, series, self.masks, strict=True):
            if data.shape[1] != mask.size:
                raise InputError(
                    f"{path} has {data.shape[1]} vertices, the participant's surface "
                    f"{mask.size}. All runs must be on the same surface mesh."
                )
        return self.select(series)

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Place kept-vertex values on each hemisphere's full mesh (NaN elsewhere; float32)."""
        out, start = {}, 0
        for hemi, mask in zip(HEMIS, self.masks, strict=True):
            full = np.full(mask.shape, np.nan, dtype=np.float32)
            full[mask] = values[start : start + mask.sum()]
            start += int(mask.sum())
            out[hemi] = full
        return out

    def full(self, values: np.ndarray) -> np.ndarray:
        """Kept-vertex values on the left then the right mesh (NaN elsewhere; float32)."""
        halves = self.split(values)
        return np.concatenate([halves["L"], halves["R"]])

    def to_map(self, values: np.ndarray, *, name: str = "") -> dict[str | None, Any]:
        """One GIfTI per hemisphere."""
        return {h: gifti_map_image(v, h, name=name) for h, v in self.split(values).items()}

    @staticmethod
    def write_map(img: nb.GiftiImage, path: Path) -> Path:
        """Atomically write a GIfTI."""
        return write_gifti(path, img)

    # -- the runs' files --------------------------------------------------------------------

    @classmethod
    def find_bolds(
        cls, layout: BIDSLayout, desc: str, **query: object
    ) -> list[tuple[BIDSFile, tuple[Path, ...]]]:
        """GIfTI pairs of the query, one per run (the hemi-L file describes the run).

        GIfTIs are accepted under the names of every fMRIPrep release (``hemi-L_space-X_bold``,
        ``space-X_hemi-L_bold``, ``space-X_hemi-L``); pybids parses all three. Both
        hemispheres are required. ``desc`` other than ``preproc`` is part of the query.
        """
        query = {**({} if desc == "preproc" else {"desc": desc}), **query}
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
                    f"hemi-{missing[0]} counterpart. bids-w2v models both hemispheres; restore "
                    f"the hemi-{missing[0]} file fMRIPrep wrote (same name with "
                    f"hemi-{missing[0]})."
                )
            left, right = hemis["L"][0], hemis["R"][0]
            out.append((left, (Path(left.path), Path(right.path))))
        return sorted(out, key=lambda pair: pair[0].path)

    @classmethod
    def inspect(cls, files: Sequence[Path], mask: Path | None = None) -> SeriesInfo:
        """Scans, TimeStep TR and vertices per hemisphere of one run's GIfTI pair."""
        imgs = [load_gifti(f) for f in files]
        counts = [len(img.darrays) for img in imgs]
        if counts[0] != counts[1]:
            raise InputError(
                f"The hemispheres of one run have different numbers of volumes: {files[0]} has "
                f"{counts[0]}, {files[1]} has {counts[1]}. Both must come from the same "
                "fMRIPrep run; re-run fMRIPrep or restore the files."
            )
        vertices = tuple(int(img.darrays[0].data.shape[0]) for img in imgs)
        trs = [gifti_tr(img) for img in imgs]
        return SeriesInfo(counts[0], trs[0] or trs[1], "GIfTI TimeStep metadata", vertices)

    @staticmethod
    def describe_layout(layout: tuple) -> str:
        """Vertices per hemisphere, for error messages."""
        return " and ".join(f"{n} vertices in hemi-{h}" for h, n in zip("LR", layout, strict=True))

    @staticmethod
    def map_values(img: nb.GiftiImage) -> np.ndarray:
        """The values of one hemisphere's GIfTI map (float64)."""
        return np.asarray(img.darrays[0].data, dtype=np.float64)

    @staticmethod
    def map_like(values: np.ndarray, ref: nb.GiftiImage, *, name: str = "") -> nb.GiftiImage:
        """``values`` as a GIfTI map of the hemisphere of ``ref``."""
        hemi = "R" if dict(ref.meta).get("AnatomicalStructurePrimary") == "CortexRight" else "L"
        return gifti_map_image(np.asarray(values, dtype=np.float32), hemi, name=name)

    # -- maps on disk (group level) ---------------------------------------------------------

    @classmethod
    def label_files(cls, atlas: Path) -> tuple[Path, ...]:
        """The GIfTI label pair of a ``--roi-atlas`` naming its ``hemi-L`` file."""
        name = atlas.name
        if not name.endswith(".gii") or "hemi-L" not in name:
            raise InputError(
                f"The ROI atlas {atlas} (--roi-atlas) does not fit surface maps: give the "
                "hemi-L GIfTI label file (e.g. ..._hemi-L_dseg.label.gii) of a label pair on the "
                "maps' mesh; its hemi-R twin (same name with hemi-R) is read beside it."
            )
        return (atlas, atlas.with_name(name.replace("hemi-L", "hemi-R")))

    @classmethod
    def map_files(cls, path: Path) -> tuple[Path, ...]:
        """The ``hemi-L`` and ``hemi-R`` GIfTIs of a map named by either of them."""
        path = Path(path)
        left = path.with_name(path.name.replace("_hemi-R_", "_hemi-L_"))
        return (left, left.with_name(left.name.replace("_hemi-L_", "_hemi-R_")))

    @classmethod
    def map_geometry(cls, files: Sequence[Path]) -> tuple[tuple, tuple, np.ndarray | None]:
        """Vertices of both hemispheres, and per hemisphere."""
        cls.check_map_files(files)
        sizes = tuple(int(nb.load(str(f)).darrays[0].data.shape[0]) for f in files)
        return (sum(sizes),), sizes, None
