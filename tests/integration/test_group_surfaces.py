"""The group level on GIfTI surfaces (fsaverage5) and CIFTI grayordinates (fsLR den-91k).

Two simulated participants share planted vertices (same stimuli, same features); the participant
level writes their maps per hemisphere or as dense scalars, the group level must combine them
in the same form: planted vertices have the highest group mean r, the group peak layer is the
planted one, the noise ceiling is computed from the surface BOLD, and the report draws the maps
without any network access.
"""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from bids_w2v.cli.run import main
from bids_w2v.errors import InputError
from bids_w2v.group.collection import collect_participant_maps, load_grid, load_map
from bids_w2v.group.roi import load_atlas
from bids_w2v.outputs.maps import load_map_data
from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset
from tests.integration.helpers import assert_recovered

LAYERS = "conv0,conv1,transformer1"
STATS = ("meanr", "p", "q", "meanrthresh", "normr")


@pytest.fixture(scope="module")
def surface_group(tmp_path_factory, tiny_model, network_attempts):
    """Participant then group level, once on fsaverage5 and once on fsLR."""
    root = tmp_path_factory.mktemp("surfgroup_ds")
    spec = SimulationSpec(
        model=str(tiny_model),
        random_init=False,
        subjects=("01", "02"),
        shape=(5, 5, 4),
        planted=(("conv1", 10), ("transformer1", 10)),
        snr=2.0,
        surfaces=("fsaverage5", "fsLR"),
    )
    truth = simulate_dataset(root, spec)
    base = tmp_path_factory.mktemp("surfgroup")
    out = base / "bids-w2v"
    for space in ("fsaverage5", "fsLR"):
        common = [
            "--model",
            str(tiny_model),
            "-w",
            str(base / f"work_{space}"),
            "--nprocs",
            "2",
            "--layers",
            LAYERS,
            "--space",
            space,
        ]
        assert main([str(root), str(out), "participant", *common]) == 0
        assert main([str(root), str(out), "group", *common]) == 0
        (base / f"group_{space}.html").write_bytes((out / "group.html").read_bytes())
    assert not network_attempts
    return out, truth, root, base


def _layer_files(out, stat, pattern):
    found = {}
    for path in out.glob(pattern.format(stat=stat)):
        meta = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
        found[meta["LayerName"]] = path
    return found


def _check_recovery(means: dict, peak: np.ndarray, planted: dict, index: dict) -> None:
    """Planted vertices: high group mean r at their layer; the peak layer is the planted one."""
    best = np.fmax.reduce(np.stack(list(means.values())), axis=0)
    null = np.isfinite(best)
    for where in planted.values():
        null[where] = False
    for layer, where in planted.items():
        assert np.mean(means[layer][where]) > np.nanmean(best[null]) + 0.25, layer
    tr = planted["transformer1"]
    assert means["conv1"][planted["conv1"]].mean() > means["conv1"][tr].mean()
    assert means["transformer1"][tr].mean() > means["conv1"][tr].mean()
    names = sorted(index, key=index.get)  # conv0, conv1, transformer1
    stack = np.stack([means[name] for name in names])
    for layer, where in planted.items():
        assert_recovered(stack, names.index(layer), where, null, n_conv=2, label=layer)
    # the group peak-layer map: transformer1-planted vertices peak in the transformer block
    assert np.median(peak[tr]) == index["transformer1"]


@pytest.mark.slow
def test_group_on_fsaverage5(surface_group):
    out, truth, *_ = surface_group
    pattern = "task-listen_hemi-L_space-fsaverage5_desc-*_stat-{stat}_statmap.func.gii"
    for stat in STATS:
        left = _layer_files(out, stat, pattern)
        assert len(left) == 3, stat
        for path in left.values():  # both hemispheres, each with its sidecar
            right = path.with_name(path.name.replace("_hemi-L_", "_hemi-R_"))
            assert right.exists() and right.with_name(right.name[:-9] + ".json").exists()
            assert isinstance(nb.load(right), nb.GiftiImage)
    for stat in ("peaklayer", "circpeaklayer", "noiseceiling"):
        assert (
            len(list(out.glob(f"task-listen_hemi-[LR]_space-fsaverage5_*stat-{stat}_*.gii"))) == 2
        )
    assert len(list(out.glob("sub-0[12]/func/*_hemi-[LR]_*stat-noiseceiling_*.func.gii"))) == 4
    assert not list(out.glob("task-listen_*space-fsaverage5*.nii.gz"))
    means = {k: load_map(p) for k, p in _layer_files(out, "meanr", pattern).items()}
    left_len = load_map_data(next(iter(_layer_files(out, "meanr", pattern).values()))).size
    peak = load_map(next(out.glob("task-listen_hemi-L_space-fsaverage5_*stat-peaklayer_*.gii")))
    meta = json.loads(next(out.glob("task-listen_hemi-L_*fsaverage5*peaklayer*.json")).read_text())
    index = {name: int(i) for i, name in meta["Layers"].items()}
    on_surface = truth[truth.hemi != ""]
    position = np.where(on_surface.hemi == "L", 0, left_len) + on_surface.vertex.to_numpy()
    planted = {
        layer: position[(on_surface.layer == layer).to_numpy()]
        for layer in ("conv1", "transformer1")
    }
    _check_recovery(means, peak, planted, index)
    ceiling = load_map(next(out.glob("task-listen_hemi-L_*fsaverage5*noiseceiling*.gii")))
    planted_all = np.concatenate(list(planted.values()))
    others = np.setdiff1d(np.flatnonzero(np.isfinite(ceiling)), planted_all)
    assert np.nanmean(ceiling[planted_all]) > np.nanmean(ceiling[others]) + 0.2


@pytest.mark.slow
def test_group_on_cifti(surface_group):
    out, truth, root, _ = surface_group
    pattern = "task-listen_space-fsLR_den-91k_desc-*_stat-{stat}_statmap.dscalar.nii"
    bold = next((root / "derivatives" / "fmriprep").rglob("*space-fsLR_den-91k_bold.dtseries.nii"))
    axis = nb.load(bold).header.get_axis(1)
    for stat in STATS:
        files = _layer_files(out, stat, pattern)
        assert len(files) == 3, stat
        for path in files.values():
            assert nb.load(path).header.get_axis(1) == axis
    assert next(out.glob("task-listen_space-fsLR_den-91k_stat-noiseceiling_statmap.dscalar.nii"))
    means = {k: load_map(p) for k, p in _layer_files(out, "meanr", pattern).items()}
    peak = load_map(next(out.glob("task-listen_space-fsLR_den-91k_*stat-peaklayer_*.dscalar.nii")))
    meta = json.loads(next(out.glob("task-listen_space-fsLR_*_stat-peaklayer_*.json")).read_text())
    index = {name: int(i) for i, name in meta["Layers"].items()}
    planted = {
        layer: truth.loc[truth.layer == layer, "grayordinate"].to_numpy()
        for layer in ("conv1", "transformer1")
    }
    _check_recovery(means, peak, planted, index)


@pytest.mark.slow
def test_group_report_and_errors(surface_group, tmp_path):
    out, _, _, base = surface_group
    cifti = (base / "group_fsLR.html").read_text()
    assert "CIFTI .dscalar.nii" in cifti and cifti.count("data:image/png;base64,") >= 5
    surface = (base / "group_fsaverage5.html").read_text()
    assert "one .func.gii per hemisphere" in surface and "GIfTI label file" in surface
    assert surface.count("data:image/png;base64,") >= 5  # fsaverage5 meshes, per layer
    # a GIfTI atlas on CIFTI maps, or a lone hemisphere on surfaces: one clear error
    found = collect_participant_maps(out, "listen", "fsaverage5", None)
    grid = load_grid(next(iter(next(iter(found.values())).values()))[0][1])
    assert grid.form == "surface" and len(grid.files) == 2
    left = tmp_path / "atlas_hemi-L_dseg.label.gii"
    img = nb.gifti.GiftiImage(
        darrays=[nb.gifti.GiftiDataArray(np.ones(grid.sizes[0], np.int32), datatype="int32")]
    )
    nb.save(img, left)
    with pytest.raises(InputError, match="hemi-R"):
        load_atlas(left, grid)
    nb.save(img, tmp_path / "atlas_hemi-R_dseg.label.gii")
    labels, names = load_atlas(left, grid)
    assert labels.shape == grid.shape and names == {1: "roi1"}
    with pytest.raises(InputError, match="maps exist in: fsLR, fsaverage5"):
        collect_participant_maps(out, "listen", "fsaverage6", None)


def test_fsaverage5_group_maps_roi_and_mesh_report(tmp_path, monkeypatch, network_attempts):
    """Full-size fsaverage5 maps: group maps per hemisphere, a GIfTI label-pair ROI table, and
    a report drawn on nilearn's bundled fsaverage5 mesh (no histogram fallback, no network)."""
    from bids_w2v.group.comparison import write_model_comparison
    from bids_w2v.group.maps import write_group_maps
    from bids_w2v.outputs.maps import write_participant_maps
    from bids_w2v.reports import surface_figures
    from bids_w2v.reports.group import write_group_report
    from bids_w2v.spaces import SurfaceSpace

    n = 10242
    masks = (np.arange(n) >= 100, np.arange(n) >= 100)  # a "medial wall" of 100 vertices
    space = SurfaceSpace(masks)
    rng = np.random.default_rng(0)
    planted = np.zeros(space.n_features, bool)
    planted[:500] = True
    for sub, label in [(s, m) for s in ("01", "02", "03") for m in ("tiny", "tinyRandom")]:
        meta = {"Model": "tiny", "ModelLabel": label, "RandomInit": label == "tinyRandom"}
        results = []
        for layer in (0, 1):
            scores = rng.normal(0, 0.05, space.n_features)
            scores[planted] += (0.3 + 0.2 * layer) * (label == "tiny")
            results.append(
                {
                    "scores": scores,
                    "fold_scores": [scores],
                    "alphas": np.ones((1, space.n_features)),
                    "excluded": np.zeros(space.n_features, bool),
                }
            )
        write_participant_maps(
            results,
            ["conv0", "transformer0"],
            [0, 1],
            space,
            output_dir=tmp_path,
            subject=sub,
            task="listen",
            space="fsaverage5",
            res=None,
            model_label=label,
            metadata=meta,
        )
    labels = np.zeros(n, np.int32)
    labels[100:300] = 7  # planted vertices of the left hemisphere
    for hemi in ("L", "R"):
        data = labels if hemi == "L" else np.zeros(n, np.int32)
        darray = nb.gifti.GiftiDataArray(data, datatype="int32")
        nb.save(nb.gifti.GiftiImage(darrays=[darray]), tmp_path / f"a_hemi-{hemi}_dseg.label.gii")
    (tmp_path / "a_hemi-L_dseg.tsv").write_text("index\tname\n7\tplanted\n")
    found = collect_participant_maps(tmp_path, "listen", "fsaverage5", None)
    files = write_group_maps(
        found["tiny"],
        output_dir=tmp_path,
        task="listen",
        space="fsaverage5",
        res=None,
        model_label="tiny",
        roi_atlas=tmp_path / "a_hemi-L_dseg.label.gii",
    )
    assert all(f.name.endswith((".func.gii", ".tsv")) for f in files)
    mean = load_map(next(tmp_path.glob("task-listen_hemi-L_*Transformer0_stat-meanr_*.gii")))
    assert mean.shape == (2 * n,) and np.isnan(mean[:100]).all()
    assert np.nanmean(mean[100:600]) > 0.45 > np.nanmean(mean[600:n])
    roi = pd.read_csv(next(tmp_path.glob("task-listen_*_stat-roi_summary.tsv")), sep="\t")
    row = roi[(roi.roi == "planted") & (roi.layer == "transformer0")].iloc[0]
    assert row.n_voxels == 200 and row["mean"] > 0.45

    compared = write_model_comparison(
        found["tiny"],
        found["tinyRandom"],
        output_dir=tmp_path,
        task="listen",
        space="fsaverage5",
        res=None,
    )
    diff_l = next(p for p in compared if "Transformer0_stat-meandiff" in p.name)
    assert "_hemi-L_" in diff_l.name and diff_l.with_name(diff_l.name[:-9] + ".json").exists()
    diff = load_map(diff_l)
    assert np.nanmean(diff[100:600]) > 0.45 > np.nanmean(diff[600:n]) + 0.4

    # bad surface atlases and a lone hemisphere: one clear error each
    grid = load_grid(found["tiny"]["conv0"][0][1])
    small = nb.gifti.GiftiDataArray(np.ones(10, np.int32), datatype="int32")
    nb.save(nb.gifti.GiftiImage(darrays=[small]), tmp_path / "s_hemi-L_dseg.label.gii")
    nb.save(nb.gifti.GiftiImage(darrays=[small]), tmp_path / "s_hemi-R_dseg.label.gii")
    with pytest.raises(InputError, match="has 10 vertices"):
        load_atlas(tmp_path / "s_hemi-L_dseg.label.gii", grid)
    nb.save(nb.Nifti1Image(np.ones((2, 2, 2), np.int16), np.eye(4)), tmp_path / "v.nii.gz")
    with pytest.raises(InputError, match="does not fit surface maps"):
        load_atlas(tmp_path / "v.nii.gz", grid)
    lone = tmp_path / "x" / found["tiny"]["conv0"][0][1].name
    lone.parent.mkdir()
    lone.write_bytes(found["tiny"]["conv0"][0][1].read_bytes())
    with pytest.raises(InputError, match="one GIfTI per hemisphere"):
        load_grid(lone)

    def no_histogram(*args, **kwargs):
        raise AssertionError("fsaverage5 maps must be drawn on the mesh")

    monkeypatch.setattr(surface_figures, "_histogram_png", no_histogram)
    report = write_group_report(tmp_path, task="listen", space="fsaverage5", res=None)
    assert report.read_text().count("data:image/png;base64,") >= 4
    assert not network_attempts


@pytest.mark.slow
def test_narratives_group_noise_ceiling_on_fsaverage6(tmp_path, tiny_model):
    """Narratives-like ``desc-clean`` GIfTIs without confounds: the group noise ceiling re-reads
    them with the participant level's --desc-label and confounds strategy, on the surface.

    sub-002 is sub-001 with fresh noise on the planted vertices and pure noise elsewhere, so the
    ceiling is high on the planted vertices only.
    """
    import shutil

    from bids_w2v.testing.replicas import narratives_replica

    root = tmp_path / "ds002345"
    truth = narratives_replica(root, tiny_model)
    rng = np.random.default_rng(1)
    for top in (root, root / "derivatives" / "afni-nosmooth"):
        for src in sorted((top / "sub-001").rglob("*")):
            if src.is_file():
                dst = (
                    top
                    / "sub-002"
                    / str(src.relative_to(top / "sub-001")).replace("sub-001", "sub-002")
                )
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    for gii in (root / "derivatives" / "afni-nosmooth" / "sub-002").rglob("*fsaverage6*.gii"):
        img = nb.load(gii)
        data = np.stack([d.data for d in img.darrays])
        hemi = "L" if "hemi-L" in gii.name else "R"
        planted = truth.loc[truth.hemi == hemi, "vertex"].to_numpy()
        fresh = 1000.0 + 10.0 * rng.standard_normal(data.shape)
        fresh[:, planted] = data[:, planted] + 10.0 * rng.standard_normal((len(data), planted.size))
        for darray, row in zip(img.darrays, fresh, strict=True):
            darray.data = row.astype(np.float32)
        nb.save(img, gii)
    out = tmp_path / "out"
    args = [
        "--task", "pieman", "--space", "fsaverage6", "--desc-label", "clean",
        "-d", f"afni-nosmooth={root / 'derivatives' / 'afni-nosmooth'}",
        "--layers", "conv1,transformer1", "--model", str(tiny_model), "-w", str(tmp_path / "w"),
        "--nprocs", "2",
    ]  # fmt: skip
    assert main([str(root), str(out), "participant", *args]) == 0
    assert main([str(root), str(out), "group", *args]) == 0
    left = out / "task-pieman_hemi-L_space-fsaverage6_stat-noiseceiling_statmap.func.gii"
    meta = json.loads(left.with_name(left.name[:-9] + ".json").read_text())
    assert meta["Participants"] == ["001", "002"]
    sub_meta = json.loads(
        next(out.glob("sub-001/func/*_hemi-R_*stat-noiseceiling_statmap.json")).read_text()
    )
    assert sub_meta["ConfoundsStrategy"] == ["none"]
    ceiling = load_map(left)
    n_left = load_map_data(left).size
    position = np.where(truth.hemi == "L", 0, n_left) + truth.vertex.to_numpy()
    others = np.setdiff1d(np.flatnonzero(np.isfinite(ceiling)), position)
    assert np.mean(ceiling[position]) > 0.3 > np.mean(ceiling[others]) + 0.2
    assert list(out.glob("task-pieman_hemi-R_*Conv1_stat-normr_statmap.func.gii"))
