"""Sign-flip permutation test with max-statistic FWE correction (``--group-test permutation``),
checked against an exhaustive enumeration of the sign flips written here."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import stats

from bids_w2v.group.collection import collect_participant_maps, load_map
from bids_w2v.group.comparison import write_model_comparison
from bids_w2v.group.maps import write_group_maps
from bids_w2v.group.significance import GroupTest
from bids_w2v.group.statistics import sign_flip_fwe
from bids_w2v.testing.group_maps import SPACE, write_maps

COMMON = {"task": "listen", "space": SPACE, "res": None}


def exhaustive_fwe(maps: np.ndarray) -> np.ndarray:
    """FWE p from every sign flip: share of flips whose max |t| reaches the voxel's |t|."""
    n = maps.shape[0]
    t0 = np.abs(stats.ttest_1samp(maps, 0).statistic)
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    maxima = np.array(
        [np.abs(stats.ttest_1samp(f[:, None] * maps, 0).statistic).max() for f in flips]
    )
    return np.array([(maxima >= t - 1e-12).mean() for t in t0])


def test_sign_flip_t_and_fwe_match_exhaustive_enumeration():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((8, 40))
    maps[:, :5] += 1.5
    t, p = sign_flip_fwe(maps, n_permutations=20000, seed=1)
    np.testing.assert_allclose(t, stats.ttest_1samp(maps, 0).statistic, rtol=1e-10)
    # random flips estimate the exhaustive p (256 flips) to within sampling error
    np.testing.assert_allclose(p, exhaustive_fwe(maps), atol=0.015)


def test_sign_flip_is_seeded_and_handles_nan_and_constants():
    rng = np.random.default_rng(2)
    maps = rng.standard_normal((10, 30))
    maps[3, 4] = np.nan
    maps[:, 5] = 0.0
    t1, p1 = sign_flip_fwe(maps, 500, seed=7)
    t2, p2 = sign_flip_fwe(maps, 500, seed=7)
    np.testing.assert_array_equal(p1, p2)
    assert np.isnan(t1[4]) and np.isnan(p1[4]) and p1[5] == 1.0
    assert np.isfinite(p1[np.r_[0:4, 6:30]]).all()


def test_null_family_wise_error_at_nominal_level():
    """Under the null, P(any voxel with p_fwe < 0.05) <= 0.05 (within binomial error)."""
    rng = np.random.default_rng(3)
    hits = 0
    n_sim = 100
    for seed in range(n_sim):
        maps = rng.standard_normal((12, 200))
        hits += bool((sign_flip_fwe(maps, 400, seed)[1] < 0.05).any())
    assert hits / n_sim <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_sim)


@pytest.fixture
def maps_dir(tmp_path):
    out = tmp_path / "out"
    write_maps(out)
    return out, collect_participant_maps(out, None, SPACE, None)


def test_group_maps_with_permutation_test(maps_dir):
    out, found = maps_dir
    test = GroupTest("permutation", n_permutations=300, seed=0)
    files = write_group_maps(
        found["tiny"], output_dir=out, model_label="tiny", fdr_q=0.05, group_test=test, **COMMON
    )
    names = " ".join(f.name for f in files)
    assert "stat-t_" in names and "stat-fwep_" in names and "stat-q_" not in names
    stem = out / f"task-listen_space-{SPACE}_desc-tinyTransformer1"
    subjects = [f"{i:02d}" for i in range(1, 9)]
    maps = np.stack(
        [
            load_map(next((out / f"sub-{s}" / "func").glob("*tinyTransformer1_stat-r_*.nii.gz")))
            for s in subjects
        ]
    ).reshape(8, -1)
    t = load_map(f"{stem}_stat-t_statmap.nii.gz").ravel()
    np.testing.assert_allclose(t, stats.ttest_1samp(maps, 0).statistic, rtol=1e-5)
    p = load_map(f"{stem}_stat-fwep_statmap.nii.gz").ravel()
    thr = load_map(f"{stem}_stat-meanrthresh_statmap.nii.gz").ravel()
    assert np.array_equal(np.isfinite(thr), p < 0.05)
    meta = json.loads(open(f"{stem}_stat-meanrthresh_statmap.json").read())
    assert "sign-flip permutation" in meta["Test"] and "300 permutations" in meta["Test"]
    assert meta["FWELevel"] == 0.05 and "FWE-corrected p < 0.05" in meta["Description"]
    wil = json.loads(open(f"{stem}_stat-t_statmap.json").read())
    assert wil["Statistic"] == "t"


def test_model_comparison_with_permutation_test(maps_dir):
    out, found = maps_dir
    write_model_comparison(
        found["tiny"],
        found["tinyRandom"],
        output_dir=out,
        group_test=GroupTest("permutation", 200, 0),
        **COMMON,
    )
    stem = out / f"task-listen_space-{SPACE}_desc-tinyMinustinyRandomConv0"
    meta = json.loads(open(f"{stem}_stat-fwep_statmap.json").read())
    assert "paired differences" in meta["Test"] and meta["Statistic"] == "p_fwe"


def test_group_test_travels_the_configuration(tmp_path):
    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.config import RunConfig
    from bids_w2v.workflows.group import init_group_wf

    args = [
        str(tmp_path),
        str(tmp_path / "out"),
        "group",
        "--group-test",
        "permutation",
        "--n-permutations",
        "123",
        "--permutation-seed",
        "4",
    ]
    config = build_config(build_parser().parse_args(args))
    assert config.group.group_test == "permutation" and config.group.n_permutations == 123
    wf = init_group_wf(
        ["a", "b"],
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
        task="t",
        space=SPACE,
        res=None,
        group=config.group,
        participant=RunConfig(
            bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant"
        ),
    )
    for name in ("group_a", "compare_a_b"):
        inputs = wf.get_node(name).inputs
        assert (inputs.group_test, inputs.n_permutations, inputs.permutation_seed) == (
            "permutation",
            123,
            4,
        )


@pytest.mark.parametrize("flags", [["--n-permutations", "0"], ["--group-test", "ttest"]])
def test_bad_group_test_options_are_refused(tmp_path, capsys, flags):
    from bids_w2v.cli.parser import build_parser

    with pytest.raises(SystemExit) as err:
        build_parser().parse_args([str(tmp_path), str(tmp_path / "out"), "group", *flags])
    assert err.value.code != 0
    assert "--" in capsys.readouterr().err
