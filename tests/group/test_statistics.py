"""Group statistics: Wilcoxon + BH-FDR, circular mean, ROI tables, noise ceiling, comparisons.

The statistics are checked against scipy called voxel by voxel and against a Benjamini-Hochberg
written here from its definition; the maps come from bids-w2v's own participant-map writer.
"""

from __future__ import annotations

import json
import warnings

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_w2v.errors import InputError
from bids_w2v.group.ceiling import crossval_ceiling, normalised_scores
from bids_w2v.group.collection import (
    collect_participant_maps,
    comparison_pairs,
    load_map,
    table_path,
)
from bids_w2v.group.comparison import write_model_comparison
from bids_w2v.group.maps import write_group_maps
from bids_w2v.group.roi import load_atlas, roi_summary
from bids_w2v.group.statistics import (
    circular_mean_layer,
    circular_mean_position,
    fdr_bh,
    wilcoxon_against_zero,
)
from bids_w2v.testing.group_maps import INDICES, LAYERS, SPACE, planted_scores, write_maps

COMMON = {"task": "listen", "space": SPACE, "res": None}


def bh_by_hand(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values from the definition: min_{j>=i} m p_(j) / j."""
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        adjusted[i] = running
    return adjusted


def test_wilcoxon_matches_scipy_voxel_by_voxel():
    rng = np.random.default_rng(1)
    maps = rng.normal(0.05, 0.1, size=(9, 40))
    maps[:, 3] = np.nan  # outside a mask
    maps[:, 5] = 0.0  # constant zero
    _, p = wilcoxon_against_zero(maps)
    for v in range(maps.shape[1]):
        if v == 3:
            assert np.isnan(p[v])
        elif v == 5:
            assert p[v] == 1.0
        else:
            assert p[v] == pytest.approx(stats.wilcoxon(maps[:, v]).pvalue)


def test_fdr_matches_hand_computation():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(0, 0.01, 10), rng.uniform(0, 1, 90)])
    q = fdr_bh(np.append(p, np.nan))
    np.testing.assert_allclose(q[:-1], bh_by_hand(p))
    assert np.isnan(q[-1])
    # the classic example: p = (0.01, 0.02, 0.03, 0.04, 0.05) all have q = 0.05
    np.testing.assert_allclose(fdr_bh(np.array([0.01, 0.02, 0.03, 0.04, 0.05])), 0.05)


def test_circular_mean_hand_cases():
    # K = 19 layers, period 20
    cases = [
        ([19.0, 1.0], 0.0),  # wrap-around: 19 and 1 average to 0, not 10
        ([18.0, 0.0], 19.0),  # 18 and 0 straddle the empty slot 19
        ([5.0, 7.0], 6.0),
        ([3.0, 3.0, 3.0], 3.0),
        ([0.0, 0.0, 2.0, 2.0], 1.0),
    ]
    for peaks, expected in cases:
        out = circular_mean_layer(np.array(peaks)[:, None], 19)[0]
        assert min(abs(out - expected), 20 - abs(out - expected)) < 1e-9, (peaks, out)
    # NaN subjects are ignored
    out = circular_mean_layer(np.array([[4.0], [np.nan]]), 19)
    assert out[0] == pytest.approx(4.0)


def test_circular_mean_on_a_subset_of_layers():
    indices = [0, 3, 7, 18]  # positions 0..3, period 5
    peaks = np.array([[18.0, 3.0, 7.0], [0.0, 7.0, 7.0]])
    out = circular_mean_position(peaks, indices)
    # 18 (position 3) and 0 (position 0) wrap through the empty slot 4: nearest is position 0
    # or 3 at equal distance, never a middle layer
    assert out[0] in (0.0, 18.0)
    assert out[1] in (3.0, 7.0)  # positions 1 and 2 average to 1.5
    assert out[2] == 7.0
    # contiguous indices keep the continuous value on the LayerIndex scale
    out = circular_mean_position(np.array([[7.0], [9.0]]), list(range(7, 19)))
    assert out[0] == pytest.approx(8.0)


def test_roi_summary_by_hand():
    # 2 layers, 3 subjects, 4 voxels; ROI 1 = voxels 0-1, ROI 2 = voxels 2-3
    scores = np.array(
        [
            [[0.1, 0.3, 0.0, 0.0], [0.2, 0.4, 0.0, 0.0], [0.3, 0.5, 0.0, np.nan]],
            [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.6, 0.6], [0.0, 0.0, 0.7, np.nan]],
        ]
    )
    labels = np.array([1, 1, 2, 2])
    peaks = np.array([0.0, 0.0, 7.0, 7.0])
    table = roi_summary(
        scores, ["conv0", "transformer0"], [0, 7], labels, {1: "A1", 2: "STG"}, peaks, "m"
    )
    row = table[(table.roi == "A1") & (table.layer == "conv0")].iloc[0]
    per_subject = np.array([0.2, 0.3, 0.4])
    assert row["mean"] == pytest.approx(0.3)
    assert row["sem"] == pytest.approx(per_subject.std(ddof=1) / np.sqrt(3))
    assert row["n_subjects"] == 3 and row["n_voxels"] == 2 and row["percent_peak"] == 100
    row = table[(table.roi == "STG") & (table.layer == "transformer0")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean([0.5, 0.6, 0.7]))  # NaN voxel skipped
    assert table[(table.roi == "STG") & (table.layer == "conv0")]["percent_peak"].iloc[0] == 0
    assert set(table.roi) == {"wholebrain", "A1", "STG"}


def test_noise_ceiling_recovers_shared_signal():
    from bids_w2v.encoding.folds import make_folds

    rng = np.random.default_rng(3)
    n_scans, n_subjects = 300, 4
    shared = rng.standard_normal((n_scans, 20))
    shared[:, 10:] = 0  # voxels 10-19: noise only
    data = [shared + rng.standard_normal((n_scans, 20)) for _ in range(n_subjects)]
    folds = make_folds(n_scans, n_folds=5)
    for s in range(n_subjects):
        others = np.mean([d for i, d in enumerate(data) if i != s], axis=0)
        ceiling = crossval_ceiling(data[s], others, folds)
        # theory: corr(s + n, s + mean of 3 noises) = 1 / sqrt(2 * (1 + 1/3)) ~ 0.61
        assert ceiling[:10].mean() == pytest.approx(1 / np.sqrt(2 * (1 + 1 / 3)), abs=0.05)
        assert abs(ceiling[10:].mean()) < 0.08
    ratio = normalised_scores(np.array([0.1, 0.1, 0.1]), np.array([0.5, 0.0, -0.2]))
    assert ratio[0] == pytest.approx(0.2) and np.isnan(ratio[1:]).all()


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("group") / "bids-w2v"
    base = write_maps(out)
    found = collect_participant_maps(out, None, SPACE, None)
    return out, found, base


def test_group_maps_against_scipy(two_models):
    out, found, base = two_models
    files = write_group_maps(
        found["tiny"], output_dir=out, model_label="tiny", fdr_q=0.05, **COMMON
    )
    assert not [f for f in files if ".tmp" in f.name]
    subjects = [f"{i:02d}" for i in range(1, 9)]
    maps = np.stack(
        [
            load_map(next((out / f"sub-{s}" / "func").glob("*tinyTransformer1_stat-r_*.nii.gz")))
            for s in subjects
        ]
    ).reshape(8, -1)
    stem = out / f"task-listen_space-{SPACE}_desc-tinyTransformer1"
    p = load_map(f"{stem}_stat-p_statmap.nii.gz").ravel()
    q = load_map(f"{stem}_stat-q_statmap.nii.gz").ravel()
    expected_p = np.array([stats.wilcoxon(maps[:, v]).pvalue for v in range(maps.shape[1])])
    np.testing.assert_allclose(p, expected_p, rtol=1e-5)
    np.testing.assert_allclose(q, bh_by_hand(expected_p), rtol=1e-5)
    np.testing.assert_allclose(
        load_map(f"{stem}_stat-meanr_statmap.nii.gz").ravel(), maps.mean(0), rtol=1e-5
    )
    thr = load_map(f"{stem}_stat-meanrthresh_statmap.nii.gz").ravel()
    assert np.array_equal(np.isfinite(thr), q < 0.05) and np.isfinite(thr).all()
    meta = json.loads(open(f"{stem}_stat-q_statmap.json").read())
    assert meta["Statistic"] == "q" and meta["NumberOfSubjects"] == 8
    # peaks: shallow half at conv0 (index 0), deep half at transformer1 (index 8)
    deep = np.arange(maps.shape[1]) >= maps.shape[1] // 2
    peak = load_map(out / f"task-listen_space-{SPACE}_desc-tiny_stat-peaklayer_statmap.nii.gz")
    circ = load_map(out / f"task-listen_space-{SPACE}_desc-tiny_stat-circpeaklayer_statmap.nii.gz")
    np.testing.assert_array_equal(peak.ravel(), np.where(deep, 8, 0))
    np.testing.assert_allclose(circ.ravel() % 9, np.where(deep, 8, 0), atol=0.6)
    dist = pd.read_csv(table_path(out, desc="tiny", stat="peaklayer", **COMMON), sep="\t")
    assert len(dist) == 8 * len(LAYERS)
    assert dist.groupby("participant_id")["percent"].sum().round(6).eq(100).all()
    assert (
        dist[dist.layer == "conv1"]["n_voxels"].sum()
        < dist[dist.layer == "conv0"]["n_voxels"].sum()
    )


def test_roi_atlas_resampled_with_names(two_models, tmp_path):
    out, found, _ = two_models
    # the atlas at twice the resolution of the maps: resampled by nearest neighbour
    fine = np.zeros((8, 8, 6), np.int16)
    fine[:, :, :3] = 1  # maps' k = 0 (shallow half: voxels < 24 are i, j, k=0..)
    fine[:, :, 3:] = 2
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    atlas = tmp_path / "atlas.nii.gz"
    nb.save(nb.Nifti1Image(fine, affine), atlas)
    (tmp_path / "atlas.tsv").write_text("index\tname\n1\tlow\n2\thigh\n")
    labels, names = load_atlas(atlas, nb.load(next(out.glob("sub-01/func/*_stat-r_*.nii.gz"))))
    assert names == {1: "low", 2: "high"}
    assert labels.shape == (4, 4, 3) and set(np.unique(labels)) == {1, 2}
    write_group_maps(found["tiny"], output_dir=out, model_label="tiny", roi_atlas=atlas, **COMMON)
    table = pd.read_csv(table_path(out, desc="tiny", stat="roi", **COMMON), sep="\t")
    assert set(table.roi) == {"wholebrain", "low", "high"}
    assert (table.n_subjects == 8).all()
    assert table.groupby("roi").n_voxels.first().to_dict() == {
        "wholebrain": 48,
        "low": 32,
        "high": 16,
    }
    (tmp_path / "atlas.tsv").write_text("label\tregion\n1\tx\n")
    with pytest.raises(InputError, match="index"):
        load_atlas(atlas, nb.load(next(out.glob("sub-01/func/*_stat-r_*.nii.gz"))))


def test_model_comparison(two_models):
    out, found, _ = two_models
    assert comparison_pairs(found) == [("tiny", "tinyRandom")]
    write_model_comparison(found["tiny"], found["tinyRandom"], output_dir=out, **COMMON)
    stem = out / f"task-listen_space-{SPACE}_desc-tinyMinustinyRandomConv0"
    diff = load_map(f"{stem}_stat-meandiff_statmap.nii.gz")
    np.testing.assert_allclose(diff, 0.1, atol=0.03)  # the planted effect
    a = np.stack(
        [
            load_map(next(out.glob(f"sub-{s:02d}/func/*tinyConv0_stat-r_*.nii.gz")))
            for s in range(1, 9)
        ]
    )
    b = np.stack(
        [
            load_map(next(out.glob(f"sub-{s:02d}/func/*tinyRandomConv0_stat-r_*.nii.gz")))
            for s in range(1, 9)
        ]
    )
    p = load_map(f"{stem}_stat-p_statmap.nii.gz")
    assert p[0, 0, 0] == pytest.approx(stats.wilcoxon(a[:, 0, 0, 0], b[:, 0, 0, 0]).pvalue)
    table = pd.read_csv(
        table_path(out, desc="tinyMinustinyRandom", stat="comparison", **COMMON), sep="\t"
    )
    assert list(table.layer) == LAYERS and list(table.layer_index) == INDICES
    assert (table.mean_difference > 0.08).all() and (table.p < 0.01).all()


def test_too_few_subjects_warns_and_skips_p(tmp_path):
    out = tmp_path / "out"
    write_maps(out, subjects=("01",), models=(("tiny", False, 0.1),))
    found = collect_participant_maps(out, None, SPACE, None)
    with pytest.warns(UserWarning, match="at least 2"):
        files = write_group_maps(found["tiny"], output_dir=out, model_label="tiny", **COMMON)
    names = " ".join(f.name for f in files)
    assert "stat-meanr_" in names and "stat-p_" not in names and "stat-q_" not in names
    meta = json.loads(
        table_path(out, desc="tiny", stat="roi", extension=".json", **COMMON).read_text()
    )
    assert any("at least 2" in n for n in meta["Notes"])


def test_subjects_in_different_spaces_or_grids(tmp_path):
    out = tmp_path / "out"
    write_maps(out, subjects=("01", "02"), models=(("tiny", False, 0.1),))
    write_maps(out, subjects=("03",), models=(("tiny", False, 0.1),), space="MNI152NLin6Asym")
    with pytest.raises(InputError, match="sub-03 only has maps in MNI152NLin6Asym"):
        collect_participant_maps(out, None, SPACE, None)
    with pytest.raises(InputError, match="maps exist in: MNI152NLin2009cAsym"):
        collect_participant_maps(out, None, "fsaverage", None)
    # same space name but another grid
    out2 = tmp_path / "out2"
    write_maps(out2, subjects=("01",), models=(("tiny", False, 0.1),))
    write_maps(
        out2, subjects=("02",), models=(("tiny", False, 0.1),), affine=np.diag([2.0, 2.0, 2.0, 1.0])
    )
    found = collect_participant_maps(out2, None, SPACE, None)
    with warnings.catch_warnings(), pytest.raises(InputError, match="same grid"):
        warnings.simplefilter("ignore")
        write_group_maps(found["tiny"], output_dir=out2, model_label="tiny", **COMMON)


def test_planted_layout_is_what_the_tests_assume():
    base = planted_scores((4, 4, 3))
    assert base.shape == (len(LAYERS), 48)
    assert np.argmax(base[:, 0]) == 0 and np.argmax(base[:, -1]) == len(LAYERS) - 1


def test_cli_group_errors(tmp_path, capsys):
    """Bad group-level inputs stop with one message and a non-zero exit, before any work."""
    from bids_w2v.cli.run import main

    out = tmp_path / "out"
    write_maps(out, subjects=("01", "02"), models=(("tiny", False, 0.1),))
    ds = tmp_path / "ds"
    ds.mkdir()
    code = main([str(ds), str(out), "group", "--roi-atlas", str(tmp_path / "missing.nii.gz")])
    assert code != 0 and "missing.nii.gz (--roi-atlas) does not exist" in capsys.readouterr().err
    code = main([str(ds), str(out), "group", "--space", "MNI152NLin6Asym"])
    err = capsys.readouterr().err
    assert code != 0 and "maps exist in: MNI152NLin2009cAsym" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main([str(ds), str(out), "group", "--fdr-q", "1.5"])


@pytest.mark.parametrize("n_subjects", [20, 60])
def test_wilcoxon_in_voxel_blocks_equals_one_call(n_subjects, monkeypatch):
    """Above 50 participants the test runs in voxel blocks: the same values as scipy on the
    whole array, ties and zeros in some voxels included."""
    import bids_w2v.group.statistics as statistics

    rng = np.random.default_rng(5)
    maps = np.round(rng.normal(0.02, 0.1, size=(n_subjects, 301)), 2)  # ties
    maps[:3, 7] = 0.0  # zeros in one voxel
    expected = stats.wilcoxon(maps, axis=0)
    monkeypatch.setattr(statistics, "WILCOXON_BLOCK", n_subjects * 17)
    stat, p = wilcoxon_against_zero(maps)
    assert np.array_equal(p, expected.pvalue) and np.array_equal(stat, expected.statistic)
