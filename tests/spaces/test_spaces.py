"""The three map spaces share one interface: common -> load -> to_map/write_map -> save/read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nibabel as nb
import numpy as np
import pytest
from nibabel import cifti2

from bids_w2v.errors import InputError
from bids_w2v.group.collection import load_grid, load_map, same_grid
from bids_w2v.outputs.maps import load_map_data
from bids_w2v.spaces import (
    CiftiSpace,
    SurfaceSpace,
    VolumeSpace,
    as_space,
    file_kind,
    load_map_space,
    space_for,
    space_kind,
    space_of_file,
)

N_SCANS = 6


def _series(rng, n: int, constant: int) -> np.ndarray:
    """(N_SCANS, n) float32 with the last ``constant`` columns constant (a 'medial wall')."""
    data = rng.normal(size=(N_SCANS, n)).astype(np.float32)
    data[:, n - constant :] = 1.0
    return data


def _volume_run(tmp_path: Path, rng, run: int) -> tuple[Path, Path]:
    data = rng.normal(size=(3, 3, 2, N_SCANS)).astype(np.float32)
    bold = tmp_path / f"sub-01_task-t_run-{run}_space-MNI_desc-preproc_bold.nii.gz"
    nb.Nifti1Image(data, np.eye(4)).to_filename(bold)
    mask = np.ones((3, 3, 2), np.uint8)
    mask[0, 0, run % 2] = 0  # the runs' masks differ by one voxel
    mask_file = tmp_path / f"sub-01_task-t_run-{run}_space-MNI_desc-brain_mask.nii.gz"
    nb.Nifti1Image(mask, np.eye(4)).to_filename(mask_file)
    return bold, mask_file


def _gifti_run(tmp_path: Path, rng, run: int) -> tuple[Path, Path]:
    files = []
    for hemi, n in (("L", 5), ("R", 4)):
        data = _series(rng, n, constant=1 + run)  # fewer varying vertices in run 1
        img = nb.GiftiImage(darrays=[nb.gifti.GiftiDataArray(row) for row in data])
        files.append(
            tmp_path / f"sub-01_task-t_run-{run}_hemi-{hemi}_space-fsaverage5_bold.func.gii"
        )
        nb.save(img, files[-1])
    return files[0], files[1]


def _brain_models() -> cifti2.BrainModelAxis:
    left = cifti2.BrainModelAxis.from_mask(np.ones(4, bool), name="CortexLeft")
    right = cifti2.BrainModelAxis.from_mask(np.ones(3, bool), name="CortexRight")
    return left + right


def _cifti_run(tmp_path: Path, rng, run: int) -> Path:
    data = _series(rng, 7, constant=1 + run)
    series = cifti2.SeriesAxis(start=0, step=2.0, size=N_SCANS, unit="SECOND")
    path = tmp_path / f"sub-01_task-t_run-{run}_space-fsLR_den-91k_bold.dtseries.nii"
    cifti2.Cifti2Image(data, header=(series, _brain_models())).to_filename(path)
    return path


def test_space_kinds_and_classes():
    assert [space_kind(s) for s in ("MNI152NLin2009cAsym", "fsaverage5", "fsLR")] == [
        "volume",
        "surface",
        "cifti",
    ]
    assert space_for("fsaverage6") is SurfaceSpace and space_for("cifti") is CiftiSpace
    assert space_for("T1w") is VolumeSpace
    assert file_kind("a_hemi-L_bold.func.gii") == "surface"
    assert space_of_file("a_bold.dtseries.nii") is CiftiSpace
    assert space_of_file("a_statmap.dscalar.nii") is CiftiSpace
    assert space_of_file("a_bold.nii.gz") is VolumeSpace
    assert [c.extension for c in (VolumeSpace, SurfaceSpace, CiftiSpace)] == [
        ".nii.gz",
        ".func.gii",
        ".dscalar.nii",
    ]


def test_mask_methods_keep_the_sidecar_strings():
    with_masks = [SimpleNamespace(mask=Path("m.nii.gz"), data_files=(Path("b.nii.gz"),))]
    without = [SimpleNamespace(mask=None, data_files=(Path("b.nii.gz"),))]
    assert VolumeSpace.mask_method(with_masks) == "intersection of the run masks"
    assert VolumeSpace.mask_method(without) == "nilearn compute_multi_epi_mask"
    for cls in (SurfaceSpace, CiftiSpace):
        assert cls.mask_method(without) == "vertices with a varying signal in every run"
    assert VolumeSpace.mask_inputs(with_masks) == {"mask_files": ["m.nii.gz"]}
    assert VolumeSpace.mask_inputs(without) == {"bold_files": [["b.nii.gz"]]}
    assert SurfaceSpace.mask_inputs(with_masks) == {"bold_files": [["b.nii.gz"]]}


def _roundtrip(space, bold_files, tmp_path: Path) -> list[Path]:
    """load -> to_map -> write_map -> read back; save -> read gives the same space."""
    data = space.load(bold_files)
    assert data.shape == (N_SCANS, space.n_features) and data.dtype == np.float32
    values = np.arange(space.n_features, dtype=np.float64) + 1
    full = space.full(values)
    assert full.dtype == np.float32 and np.isfinite(full).sum() == space.n_features
    assert sorted(full[np.isfinite(full)]) == sorted(values)
    written = []
    for hemi, img in space.to_map(values, name="m").items():
        stem = f"map_hemi-{hemi}_statmap" if hemi else "map_statmap"
        written.append(space.write_map(img, tmp_path / f"{stem}{space.extension}"))
    assert [p.name for p in tmp_path.glob("*.tmp*")] == []  # atomic writes leave nothing
    grid = load_grid(written[0])
    assert grid.form == space.kind and grid.extension == space.extension
    np.testing.assert_array_equal(load_map(written[0]).reshape(full.shape), full)
    assert same_grid(grid, load_grid(written[-1]))
    saved = space.save(tmp_path / f"space{space.work_extension}")
    again = load_map_space(saved)
    assert type(again) is type(space) and again.n_features == space.n_features
    np.testing.assert_array_equal(again.full(values), full)
    assert as_space(saved).n_features == space.n_features and as_space(space) is space
    return written


@pytest.mark.filterwarnings("ignore:Computed an empty mask")  # noise, not an EPI
def test_volume_space(tmp_path):
    rng = np.random.default_rng(0)
    runs = [_volume_run(tmp_path, rng, r) for r in (1, 2)]
    space = VolumeSpace.common(mask_files=[m for _, m in runs])
    assert space.n_features == 3 * 3 * 2 - 2  # intersection of the run masks
    info = VolumeSpace.inspect([runs[0][0]], runs[0][1])
    assert (info.n_scans, info.tr_source, info.layout[0]) == (N_SCANS, "NIfTI header", (3, 3, 2))
    assert VolumeSpace.count_features([runs[0][0]], runs[0][1]) == 17
    assert VolumeSpace.count_features([runs[0][0]]) == 18
    (nii,) = _roundtrip(space, [runs[0][0]], tmp_path)
    assert nb.load(nii).get_data_dtype() == np.float32
    epi = VolumeSpace.common(bold_files=[[b] for b, _ in runs])  # no masks: nilearn's EPI mask
    assert isinstance(epi, VolumeSpace) and epi.mask_img.shape == (3, 3, 2)
    assert as_space(space.mask_img).n_features == space.n_features
    other = tmp_path / "other_mask.nii.gz"
    nb.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)).to_filename(other)
    with pytest.raises(InputError, match="not on the same grid"):
        VolumeSpace.common(mask_files=[runs[0][1], other])
    with pytest.raises(InputError, match="on different grids"):
        VolumeSpace.read(other).load([runs[0][0]])


def test_surface_space(tmp_path):
    rng = np.random.default_rng(1)
    runs = [_gifti_run(tmp_path, rng, r) for r in (1, 2)]
    space = SurfaceSpace.common(runs)
    assert space.n_features == (5 - 3) + (4 - 3)  # vertices varying in every run
    info = SurfaceSpace.inspect(runs[0])
    assert (info.n_scans, info.layout) == (N_SCANS, (5, 4))
    assert SurfaceSpace.count_features(runs[0]) == 9
    left, right = _roundtrip(space, runs[0], tmp_path)
    assert "_hemi-L_" in left.name and "_hemi-R_" in right.name
    assert load_map_data(left).shape == (5,) and load_map_data(right).shape == (4,)
    assert dict(nb.load(right).meta)["AnatomicalStructurePrimary"] == "CortexRight"
    wrong = tmp_path / "wrong.func.gii"
    nb.save(nb.GiftiImage(darrays=[nb.gifti.GiftiDataArray(np.ones(3, np.float32))]), wrong)
    with pytest.raises(InputError, match="same surface mesh"):
        space.load([wrong, runs[0][1]])


def test_cifti_space(tmp_path):
    rng = np.random.default_rng(2)
    runs = [(_cifti_run(tmp_path, rng, r),) for r in (1, 2)]
    space = CiftiSpace.common(runs)
    assert space.n_features == 7 - 3
    info = CiftiSpace.inspect(runs[0])
    assert (info.n_scans, info.header_tr, info.tr_source) == (N_SCANS, 2.0, "CIFTI series axis")
    assert CiftiSpace.count_features(runs[0]) == 7
    (dscalar,) = _roundtrip(space, runs[0], tmp_path)
    assert nb.load(dscalar).header.get_axis(1) == _brain_models()


def test_constant_surfaces_are_refused(tmp_path):
    path = tmp_path / "sub-01_task-t_space-fsLR_den-91k_bold.dtseries.nii"
    series = cifti2.SeriesAxis(start=0, step=2.0, size=N_SCANS, unit="SECOND")
    cifti2.Cifti2Image(
        np.ones((N_SCANS, 7), np.float32), header=(series, _brain_models())
    ).to_filename(path)
    with pytest.raises(InputError, match="varies in time in every run"):
        CiftiSpace.common([(path,)])
