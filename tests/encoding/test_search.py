"""Local alpha search: descent on known curves, GCV starts, and local == full on real fits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_w2v.encoding import DEFAULT_ALPHAS, cross_validated_scores
from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.basis import svd_basis
from bids_w2v.encoding.search import gcv_start, local_search
from tests.encoding.test_ridge import planted


class Counter:
    """``evaluate`` over a known criterion table that records every (alpha, voxel) asked."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.asked = np.zeros(table.shape, dtype=int)

    def __call__(self, a: int, cols: np.ndarray) -> np.ndarray:
        self.asked[a, cols] += 1
        return self.table[a, cols]


def one_hot(index: np.ndarray, n_alphas: int) -> np.ndarray:
    starts = np.zeros((n_alphas, len(index)), dtype=bool)
    starts[index, np.arange(len(index))] = True
    return starts


@settings(max_examples=60, deadline=None)
@given(
    centre=st.lists(st.floats(-3, 23), min_size=1, max_size=30),
    start=st.lists(st.integers(0, 19), min_size=30, max_size=30),
)
def test_unimodal_curves_give_the_grid_argmin_from_any_start(centre, start) -> None:
    grid = np.arange(20)[:, None]
    table = (grid - np.asarray(centre)[None, :]) ** 2  # one minimum (or two equal: ties)
    counter = Counter(table)
    best = local_search(counter, one_hot(np.asarray(start[: len(centre)]), 20))
    np.testing.assert_array_equal(best, table.argmin(0))  # first minimum on ties
    assert counter.asked.max() == 1  # nothing evaluated twice


def test_evaluations_stay_near_the_start() -> None:
    grid = np.arange(20)[:, None]
    table = (grid - np.arange(20)[None, :]) ** 2.0
    counter = Counter(table)
    best = local_search(counter, one_hot(np.arange(20), 20))
    np.testing.assert_array_equal(best, np.arange(20))
    assert counter.asked.sum(0).max() <= 3  # start and both neighbours, no more


def test_bimodal_curve_needs_a_start_in_the_lower_basin() -> None:
    table = np.array([5, 1, 3, 4, 3, 0.5, 2, 6], dtype=float)[:, None]
    # From the higher basin alone the descent stops at its local minimum...
    assert local_search(Counter(table), one_hot(np.array([1]), 8))[0] == 1
    # ...and with a start in each basin (two GCV minima) it finds the global one.
    starts = one_hot(np.array([1]), 8) | one_hot(np.array([5]), 8)
    assert local_search(Counter(table), starts)[0] == 5


def test_kfold_proxy_tracks_the_exact_criterion_with_autocorrelated_noise() -> None:
    """The diagonal proxy of inner K-fold starts within one step of the exact minimum."""
    from scipy.signal import lfilter

    from bids_w2v.encoding.inner import KFoldSelector

    rng = np.random.default_rng(0)
    n, p, v = 400, 60, 300
    X = lfilter([1], [1, -0.9], rng.standard_normal((n, p)), axis=0)  # smooth, like HRF
    signal = X @ rng.standard_normal((p, v))
    snr = np.logspace(-2, 0, v) * (rng.random(v) > 0.5)
    noise = lfilter([1], [1, -0.6], rng.standard_normal((n, v)), axis=0)  # autocorrelated
    Y = signal / signal.std(0) * np.sqrt(snr) + noise
    ops = get_ops("numpy", "cpu", "float64")
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    selector = KFoldSelector(ops, Xc / Xc.std(0), DEFAULT_ALPHAS, 5)
    exact = -selector.criterion(Yc)
    prepared = [selector._prepare(fold, Yc) for fold in selector.folds]
    proxy = selector.proxy(prepared)
    assert (np.abs(proxy.argmin(0) - exact.argmin(0)) <= 1).mean() >= 0.95
    assert (selector.select(Yc, search="local") == exact.argmin(0)).mean() >= 0.99


def test_gcv_start_is_the_argmin_of_the_explicit_gcv() -> None:
    """Against GCV computed from the explicit hat matrix with an intercept."""
    X, Y = planted(n=120, p=30, v=40)
    ops = get_ops("numpy", "cpu", "float64")
    Xc = X - X.mean(0)
    Yc = Y - Y.mean(0)
    basis = svd_basis(ops, Xc)
    starts = gcv_start(ops, basis.s, DEFAULT_ALPHAS, Yc, basis.U.T @ Yc)
    n = X.shape[0]
    for j, alpha in enumerate(DEFAULT_ALPHAS):
        H = np.ones((n, n)) / n + Xc @ np.linalg.solve(Xc.T @ Xc + alpha * np.eye(30), Xc.T)
        gcv = ((Y - H @ Y) ** 2).sum(0) / (1 - np.trace(H) / n) ** 2
        if j == 0:
            table = np.empty((len(DEFAULT_ALPHAS), Y.shape[1]))
        table[j] = gcv
    assert starts[table.argmin(0), np.arange(Y.shape[1])].all()
    assert starts.sum(0).min() >= 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("inner", ["loo", "kfold"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_local_search_picks_the_same_alphas_as_the_full_grid(inner, backend, dtype) -> None:
    X, Y = planted(p=30)
    kwargs = {"inner": inner, "backend": backend, "dtype": dtype}
    local = cross_validated_scores(X, Y, alpha_search="local", **kwargs)
    full = cross_validated_scores(X, Y, alpha_search="full", **kwargs)
    assert len(np.unique(full.alphas)) >= 8
    np.testing.assert_array_equal(local.alphas, full.alphas)
    np.testing.assert_allclose(local.fold_scores, full.fold_scores, atol=1e-6)


def test_local_search_on_wide_correlated_features_matches_the_full_grid() -> None:
    """Features like network activations (low rank + noise), as ``benchmarks/encoding.py``."""
    rng = np.random.default_rng(3)
    n, p, v = 400, 160, 600
    X = rng.standard_normal((n, p // 8)) @ rng.standard_normal((p // 8, p))
    X += 0.5 * rng.standard_normal((n, p))
    signal = X @ (rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.1))
    snr = np.logspace(-3, 0, v) * (rng.random(v) > 1 / 3)
    Y = signal / signal.std(0) * np.sqrt(snr) + rng.standard_normal((n, v))
    for inner in ("loo", "kfold"):
        local = cross_validated_scores(X, Y, inner=inner, alpha_search="local")
        full = cross_validated_scores(X, Y, inner=inner, alpha_search="full")
        same = local.alphas == full.alphas
        # measured: 99.97 % (loo) and 99.90 % (kfold) of the 3000 (fold, voxel) pairs; the
        # others are voxels whose criterion has two basins within ~1e-3 of each other
        assert same.mean() >= 0.998
        np.testing.assert_allclose(local.fold_scores[same], full.fold_scores[same], atol=1e-6)
        assert np.abs(local.fold_scores - full.fold_scores).mean() <= 1e-4


@pytest.mark.parametrize("inner", ["loo", "kfold"])
def test_search_blocks_do_not_change_results(inner, monkeypatch) -> None:
    import bids_w2v.encoding.inner as inner_mod

    X, Y = planted(p=30)
    kwargs = {"inner": inner, "dtype": "float64", "alpha_search": "local"}
    a = cross_validated_scores(X, Y, **kwargs)
    monkeypatch.setattr(inner_mod, "SEARCH_VOXELS", 7)  # 256-voxel search blocks here
    monkeypatch.setattr(inner_mod, "BLOCK_BYTES", 1)
    b = cross_validated_scores(X, Y, **kwargs)
    np.testing.assert_array_equal(a.alphas, b.alphas)
    np.testing.assert_allclose(a.fold_scores, b.fold_scores, atol=1e-12)


def test_unknown_alpha_search_is_refused() -> None:
    X, Y = planted(p=30)
    with pytest.raises(ValueError, match="alpha_search"):
        cross_validated_scores(X, Y[:, :3], alpha_search="gcv")


def test_auto_alpha_search_is_local_for_loo_and_full_for_kfold() -> None:
    from bids_w2v.encoding.ridge import resolve_alpha_search

    assert resolve_alpha_search("auto", "loo") == "local"
    assert resolve_alpha_search("auto", "kfold") == "full"
    assert resolve_alpha_search("local", "kfold") == "local"
    X, Y = planted(p=30)
    for inner, search in (("loo", "local"), ("kfold", "full")):
        auto = cross_validated_scores(X, Y[:, :50], inner=inner, alpha_search="auto")
        explicit = cross_validated_scores(X, Y[:, :50], inner=inner, alpha_search=search)
        np.testing.assert_array_equal(auto.alphas, explicit.alphas)
        np.testing.assert_array_equal(auto.fold_scores, explicit.fold_scores)


def test_alpha_search_flag_reaches_the_fit_node_sidecar_and_methods(
    sim_dataset, tiny_model, tmp_path
):
    """--alpha-search: CLI -> EncodingSettings -> workflow -> FitEncoding input, metadata."""
    import dataclasses

    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.inputs.layout import collect_runs, load_layout
    from bids_w2v.outputs.metadata import analysis_metadata
    from bids_w2v.reports.boilerplate import methods_boilerplate
    from bids_w2v.workflows.base import init_bids_w2v_wf

    root, _, _ = sim_dataset
    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=False)
    cases = (
        ((), "full", "full"),
        (("--alpha-search", "auto"), "auto", "local"),
        (("--alpha-search", "auto", "--inner-cv", "kfold"), "auto", "full"),
        (("--alpha-search", "local", "--inner-cv", "kfold"), "local", "local"),
    )
    for extra, requested, resolved in cases:
        args = build_parser().parse_args(
            [str(root), str(tmp_path / "out"), "participant", "--model", str(tiny_model), *extra]
        )
        config = dataclasses.replace(build_config(args), bids_dir=root)
        assert args.alpha_search == requested  # "auto" is resolved once, in the configuration
        assert config.encoding.alpha_search == resolved
        runs = collect_runs(layout, "01", "listen", config.space, config.res)
        wf = init_bids_w2v_wf({"01": runs}, config)
        fits = [wf.get_node(n) for n in wf.list_node_names() if n.endswith("fit_layer")]
        assert fits and all(f.inputs.alpha_search == resolved for f in fits)
        meta = analysis_metadata(config, runs)["CrossValidation"]
        assert meta["AlphaSearch"].startswith("descent" if resolved == "local" else "every")
        text = methods_boilerplate(config, n_subjects=1, n_runs=len(runs), task="listen")
        assert ("followed down to a minimum" in text) == (resolved == "local")
    with pytest.raises(SystemExit):
        build_parser().parse_args([str(root), str(tmp_path), "participant", "--alpha-search", "x"])
