"""GIfTI surfaces and CIFTI dense time series in, maps in the same form out.

A simulated dataset carries the same planted signals as volumes, as fMRIPrep's GIfTI pairs
(fsaverage5, with constant medial-wall vertices) and as a CIFTI dense time series (fsLR,
den-91k): the recovery test runs the participant level on each form.
"""

from __future__ import annotations

import shutil

import nibabel as nb
import numpy as np
import pytest
from nibabel import cifti2

from bids_w2v.bold.cleaning import clean_bold, confounds_lookup, load_bold
from bids_w2v.cli.run import main
from bids_w2v.errors import InputError
from bids_w2v.outputs.maps import load_map_data, read_sidecar, save_map_like, write_statmap
from bids_w2v.spaces import (
    CiftiSpace,
    SurfaceSpace,
    common_surface_space,
    gifti_map_image,
    load_map_space,
)
from bids_w2v.testing.simulator import MEDIAL_WALL
from tests.integration.helpers import assert_recovered

SURF = "fsaverage5"


def _func(root):
    return root / "derivatives" / "fmriprep" / "sub-01" / "func"


def _run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _participant(root, out, model, work, space, *extra):
    return [root, out, "participant", "--model", model, "-w", work, "--space", space, *extra]


# ------------------------------------------------------------------------------------------
# reading and writing


def test_map_space_roundtrip(tmp_path):
    """Surface and CIFTI maps: NaN off the map space, hemi-/den- names, sidecars, same form."""
    masks = (np.array([False, True, True, True]), np.array([True, False, True]))
    space = SurfaceSpace(masks)
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    written = write_statmap(
        values, space, {"Statistic": "pearson_r"}, tmp_path,
        task="t", stat="r", desc="m", space=SURF, subject="01",
    )  # fmt: skip
    names = [p.name for p in written]
    assert names == [
        f"sub-01_task-t_hemi-L_space-{SURF}_desc-m_stat-r_statmap.func.gii",
        f"sub-01_task-t_hemi-R_space-{SURF}_desc-m_stat-r_statmap.func.gii",
    ]
    left, right = (load_map_data(p) for p in written)
    np.testing.assert_array_equal(left, [np.nan, 1, 2, 3])
    np.testing.assert_array_equal(right, [4, np.nan, 5])
    assert read_sidecar(written[1])["Statistic"] == "pearson_r"
    assert nb.load(written[1]).meta["AnatomicalStructurePrimary"] == "CortexRight"
    copy = save_map_like(right * 2, written[1], tmp_path / "copy.func.gii")
    np.testing.assert_array_equal(load_map_data(copy), right * 2)
    assert nb.load(copy).meta["AnatomicalStructurePrimary"] == "CortexRight"

    bm = cifti2.BrainModelAxis.from_surface(np.arange(3), 5, "CortexLeft")
    cspace = CiftiSpace(bm, np.array([True, False, True]))
    (dscalar,) = write_statmap(
        np.array([0.5, 0.25]), cspace, {}, tmp_path,
        task="t", stat="r", desc="m", space="fsLR", den="91k", subject="01",
    )  # fmt: skip
    assert dscalar.name == "sub-01_task-t_space-fsLR_den-91k_desc-m_stat-r_statmap.dscalar.nii"
    img = nb.load(dscalar)
    assert img.header.get_axis(1) == bm
    assert list(img.header.get_axis(0).name) == ["m r"]
    np.testing.assert_array_equal(load_map_data(dscalar), [0.5, np.nan, 0.25])
    assert not list(tmp_path.rglob("*.tmp*"))
    # the participant's map space survives its work-directory file
    cspace.save(tmp_path / "space.dscalar.nii")
    again = load_map_space(tmp_path / "space.dscalar.nii")
    assert again.brain_models == bm and again.mask.tolist() == [True, False, True]


def test_medial_wall_excluded_and_confounds_found(surface_dataset):
    """Constant vertices are left out; cleaning a GIfTI pair finds fMRIPrep's confounds."""
    root, _ = surface_dataset
    func = _func(root)
    runs = [
        [func / f"sub-01_task-listen_run-{r}_hemi-{h}_space-{SURF}_bold.func.gii" for h in "LR"]
        for r in (1, 2)
    ]
    space = common_surface_space(runs, "surface")
    for mask in space.masks:
        assert not mask[:MEDIAL_WALL].any() and mask[MEDIAL_WALL:].all()
    raw, _ = load_bold(runs[0], space)
    data, kept = clean_bold(runs[0], space, tr=1.0, confounds_strategy=("motion", "wm_csf"))
    assert data.shape == raw.shape == (len(kept), space.n_features)
    np.testing.assert_allclose(data.mean(0), 0, atol=1e-4)
    # confound regression did something: the motion-driven artefact is gone
    none, _ = clean_bold(runs[0], space, tr=1.0, confounds_strategy=("none",))
    assert not np.allclose(data, none, atol=1e-2)


def test_old_fmriprep_names(surface_copy, tmp_path):
    """fMRIPrep 20.2 (space-X_hemi-L_bold) and <20.2 (space-X_hemi-L) names are accepted."""
    from bids_w2v.inputs.layout import collect_runs, load_layout

    func = _func(surface_copy)
    for path in func.glob("*_hemi-*_bold.func.gii"):
        stem, hemi = path.name.split("_hemi-")[0], path.name.split("_hemi-")[1][0]
        sidecar = path.with_name(path.name.replace(".func.gii", ".json"))
        if "run-1" in path.name:  # 20.2: hemi after space, sidecar alongside
            new = f"{stem}_space-{SURF}_hemi-{hemi}_bold"
            sidecar.rename(func / f"{new}.json")
            path.rename(func / f"{new}.func.gii")
        else:  # before 20.2: no suffix; here the TR comes from FreeSurfer's TimeStep (ms)
            img = nb.load(path)
            img.darrays[0].meta["TimeStep"] = "1000.000000"
            nb.save(img, func / f"{stem}_space-{SURF}_hemi-{hemi}.func.gii")
            path.unlink()
            sidecar.unlink()
    layout = load_layout(surface_copy, surface_copy / "derivatives" / "fmriprep", validate=True)
    runs = collect_runs(layout, "01", "listen", SURF, None)
    assert len(runs) == 4
    assert [f.name for f in runs[0].data_files] == [
        f"sub-01_task-listen_run-1_space-{SURF}_hemi-{h}_bold.func.gii" for h in "LR"
    ]
    assert runs[1].data_files[1].name == f"sub-01_task-listen_run-2_space-{SURF}_hemi-R.func.gii"
    assert runs[0].tr == runs[1].tr == 1.0
    lookup = confounds_lookup(runs[1].data_files)
    assert lookup[0].endswith(f"run-2_hemi-L_space-{SURF}_bold.func.gii")
    space = common_surface_space([r.data_files for r in runs[:1]], "surface")
    data, _ = clean_bold(runs[1].data_files, space, tr=1.0, confounds_strategy=("motion",))
    assert data.shape[1] == space.n_features


def test_cifti_91k_preferred_and_volume_ignored(surface_copy):
    """With den-91k and den-170k (fMRIPrep --cifti-output 170k) the 91k series is used."""
    from bids_w2v.inputs.layout import collect_runs, load_layout

    func = _func(surface_copy)
    for path in func.glob("*_den-91k_bold.*"):
        shutil.copy(path, func / path.name.replace("den-91k", "den-170k"))
    layout = load_layout(surface_copy, surface_copy / "derivatives" / "fmriprep", validate=True)
    runs = collect_runs(layout, "01", "listen", "fsLR", None)
    assert [r.den for r in runs] == ["91k"] * 4
    assert all(r.mask is None and r.data_files == (r.bold,) for r in runs)
    assert runs[0].bold.name.endswith("_space-fsLR_den-91k_bold.dtseries.nii")
    assert runs[0].n_scans == nb.load(runs[0].bold).shape[0]


# ------------------------------------------------------------------------------------------
# clear errors


def test_one_hemisphere_missing(surface_copy, tiny_model, tmp_path, capsys):
    missing = _func(surface_copy) / f"sub-01_task-listen_run-3_hemi-R_space-{SURF}_bold.func.gii"
    missing.unlink()
    code, err = _run(
        capsys, *_participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, SURF)
    )
    assert code == 2 and "Traceback" not in err
    assert "run-3_hemi-L" in err and "no hemi-R counterpart" in err


def test_vertex_count_mismatch_between_runs(surface_copy, tiny_model, tmp_path, capsys):
    path = _func(surface_copy) / f"sub-01_task-listen_run-2_hemi-L_space-{SURF}_bold.func.gii"
    img = nb.load(path)
    grown = [np.r_[d.data, 0.0].astype(np.float32) for d in img.darrays]
    nb.save(nb.GiftiImage(darrays=[nb.gifti.GiftiDataArray(g) for g in grown]), path)
    code, err = _run(
        capsys, *_participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, SURF)
    )
    assert code == 2 and "Traceback" not in err
    assert "run-2" in err and "same surface mesh" in err and "vertices in hemi-L" in err


def test_surface_space_absent(surface_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys, *_participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, "fsaverage6")
    )
    assert code == 2
    assert "space 'fsaverage6'" in err
    assert f"MNI152NLin2009cAsym, fsLR, {SURF}" in err


def test_cifti_tr_mismatch(surface_copy, tiny_model, tmp_path, capsys):
    path = _func(surface_copy) / "sub-01_task-listen_run-1_space-fsLR_den-91k_bold.dtseries.nii"
    img = nb.load(path)
    series = img.header.get_axis(0)
    series.step = 2.0
    nb.save(cifti2.Cifti2Image(img.get_fdata(), (series, img.header.get_axis(1))), path)
    code, err = _run(
        capsys, *_participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, "fsLR")
    )
    assert code == 2
    assert "1.0 s in its JSON sidecar but 2 s in the CIFTI series axis" in err


def test_gifti_timestep_read(tmp_path):
    """The GIfTI TimeStep metadata (Workbench: s; FreeSurfer: ms) gives the header TR."""
    from bids_w2v.spaces import inspect_series

    files = []
    for hemi, step in (("L", "2000"), ("R", None)):
        meta = {"TimeStep": step} if step else {}
        darrays = [
            nb.gifti.GiftiDataArray(np.zeros(4, np.float32), meta=nb.gifti.GiftiMetaData(meta))
            for _ in range(3)
        ]
        files.append(tmp_path / f"hemi-{hemi}.func.gii")
        nb.save(nb.GiftiImage(darrays=darrays), files[-1])
    info = inspect_series(files, "surface")
    assert (info.n_scans, info.header_tr, info.layout) == (3, 2.0, (4, 4))
    # hemispheres with different numbers of volumes
    one = gifti_map_image(np.zeros(4), "R", name="x").darrays[0]
    nb.save(nb.GiftiImage(darrays=[one, one]), files[1])
    with pytest.raises(InputError, match="different numbers of volumes"):
        inspect_series(files, "surface")


def test_volume_mask_grid_mismatch(surface_copy, tiny_model, tmp_path, capsys):
    mask = _func(surface_copy) / (
        "sub-01_task-listen_run-2_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"
    )
    nb.Nifti1Image(np.ones((4, 5, 4), np.uint8), nb.load(mask).affine).to_filename(mask)
    code, err = _run(
        capsys,
        *_participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, "MNI152NLin2009cAsym"),
    )
    assert code == 2 and "Traceback" not in err
    assert "run-2" in err and "(4, 5, 4)" in err and "not on the grid" in err


# ------------------------------------------------------------------------------------------
# ground truth, end to end


def _recovery(scores: dict[str, np.ndarray], peak: np.ndarray, index: dict, planted) -> None:
    """The planted features score high, at their planted layer; the others near zero."""
    best = np.fmax.reduce(np.stack(list(scores.values())), axis=0)  # NaN off the map space
    null = np.isfinite(best)
    for layer, where in planted.items():
        null[where] = False
        assert np.mean(scores[layer][where]) > 0.3, layer
    assert np.nanmean(best[~null & np.isfinite(best)]) > np.nanmean(best[null]) + 0.25
    assert abs(np.mean([np.nanmean(s[null]) for s in scores.values()])) < 0.06
    conv, tr = planted["conv1"], planted["transformer1"]
    assert scores["conv1"][conv].mean() > scores["conv1"][tr].mean()
    assert scores["transformer1"][tr].mean() > scores["conv1"][tr].mean()
    names = sorted(index, key=index.get)
    stack = np.stack([scores[name] for name in names])
    for layer, where in planted.items():
        assert_recovered(stack, names.index(layer), where, null, n_conv=7, label=layer)
    assert np.isin(peak[np.concatenate([conv, tr])], [index[n] for n in names]).all()


@pytest.mark.slow
def test_ground_truth_recovered_on_surfaces(surface_dataset, tiny_model, tmp_path):
    """GIfTI in, one .func.gii per hemisphere out, planted vertices recovered."""
    root, truth = surface_dataset
    out = tmp_path / "out"
    args = _participant(root, out, tiny_model, tmp_path / "work", SURF, "--nprocs", "2")
    assert main([str(a) for a in args]) == 0
    func = out / "sub-01" / "func"
    assert not list(func.glob("*.nii.gz")), "a surface analysis writes no NIfTI"
    scores, index = {}, {}
    for hemi_l in func.glob(f"*_hemi-L_space-{SURF}_*_stat-r_statmap.func.gii"):
        meta = read_sidecar(hemi_l)
        hemi_r = hemi_l.with_name(hemi_l.name.replace("_hemi-L_", "_hemi-R_"))
        assert read_sidecar(hemi_r) == meta
        scores[meta["LayerName"]] = np.r_[load_map_data(hemi_l), load_map_data(hemi_r)]
        index[meta["LayerName"]] = meta["LayerIndex"]
    assert len(scores) == 9
    n_left = int(truth.loc[truth.hemi == "L", "vertex"].max()) + 1  # at least
    left_len = load_map_data(next(func.glob("*_hemi-L_*_stat-r_statmap.func.gii"))).size
    assert left_len >= n_left
    peak = np.r_[
        load_map_data(next(func.glob("*_hemi-L_*_stat-peaklayer_statmap.func.gii"))),
        load_map_data(next(func.glob("*_hemi-R_*_stat-peaklayer_statmap.func.gii"))),
    ]
    for values in scores.values():  # the medial wall has no score
        assert np.isnan(values[:MEDIAL_WALL]).all()
        assert np.isnan(values[left_len : left_len + MEDIAL_WALL]).all()
    on_surface = truth[truth.hemi != ""]
    position = np.where(on_surface.hemi == "L", 0, left_len) + on_surface.vertex.to_numpy()
    planted = {
        layer: position[(on_surface.layer == layer).to_numpy()]
        for layer in ("conv1", "transformer1")
    }
    _recovery(scores, peak, index, planted)
    assert (out / "sub-01.html").exists()


@pytest.mark.slow
def test_ground_truth_recovered_on_cifti(surface_dataset, tiny_model, tmp_path):
    """CIFTI in, .dscalar.nii out on the input's grayordinates, planted ones recovered."""
    root, truth = surface_dataset
    out = tmp_path / "out"
    args = _participant(root, out, tiny_model, tmp_path / "work", "fsLR", "--nprocs", "2")
    assert main([str(a) for a in args]) == 0
    func = out / "sub-01" / "func"
    bold = nb.load(next(_func(root).glob("*run-1_space-fsLR_den-91k_bold.dtseries.nii")))
    scores, index = {}, {}
    for path in func.glob("*_space-fsLR_den-91k_*_stat-r_statmap.dscalar.nii"):
        img = nb.load(path)
        assert img.header.get_axis(1) == bold.header.get_axis(1)
        meta = read_sidecar(path)
        assert list(img.header.get_axis(0).name)[0].endswith(" r")
        scores[meta["LayerName"]] = load_map_data(path)
        index[meta["LayerName"]] = meta["LayerIndex"]
    assert len(scores) == 9
    peak = load_map_data(next(func.glob("*_stat-peaklayer_statmap.dscalar.nii")))
    planted = {
        layer: truth.loc[truth.layer == layer, "grayordinate"].to_numpy()
        for layer in ("conv1", "transformer1")
    }
    _recovery(scores, peak, index, planted)
    assert (out / "sub-01.html").exists()


def test_surface_report_figures(tmp_path, network_attempts):
    """fsaverage5 maps are drawn on nilearn's bundled mesh, other surfaces as a histogram."""
    from bids_w2v.reports.surface_figures import load_report_map, map_png, report_map_files

    rng = np.random.default_rng(0)
    maps = {}
    for n in (10242, 50):
        for hemi in "LR":
            path = tmp_path / f"n{n}" / f"sub-01_task-t_hemi-{hemi}_stat-r_statmap.func.gii"
            save_map_like(rng.uniform(-0.2, 0.2, n), _gifti_ref(tmp_path, n, hemi), path)
        maps[n] = report_map_files(sorted((tmp_path / f"n{n}").glob("*.func.gii")))
    assert all(len(files) == 1 and "_hemi-L_" in files[0].name for files in maps.values())
    sizes = {}
    for n, (left,) in maps.items():
        values = load_report_map(left)
        assert values.shape == (2 * n,)
        png = map_png(values, left, "best r", cmap="cold_hot", vmin=-0.2, vmax=0.2)
        assert png.startswith(b"\x89PNG")
        sizes[n] = len(png)
    assert sizes[10242] > 2 * sizes[50]  # a rendered mesh, not a histogram
    assert network_attempts == []


def _gifti_ref(tmp_path, n, hemi):
    from bids_w2v.spaces import write_gifti

    return write_gifti(
        tmp_path / f"ref{n}{hemi}.func.gii", gifti_map_image(np.zeros(n), hemi, name="")
    )


def test_volume_grid_mismatch_between_runs(surface_copy, tiny_model, tmp_path, capsys):
    func = _func(surface_copy)
    prefix = "sub-01_task-listen_run-3_space-MNI152NLin2009cAsym"
    bold = func / f"{prefix}_desc-preproc_bold.nii.gz"
    img = nb.load(bold)
    small = nb.Nifti1Image(np.asarray(img.dataobj)[:4], img.affine, img.header)
    small.to_filename(bold)
    mask = func / f"{prefix}_desc-brain_mask.nii.gz"
    nb.Nifti1Image(np.ones((4, 5, 4), np.uint8), img.affine).to_filename(mask)
    args = _participant(surface_copy, tmp_path / "o", tiny_model, tmp_path, "MNI152NLin2009cAsym")
    code, err = _run(capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert "run-3" in err and "(4, 5, 4)" in err and "same space and resolution" in err
