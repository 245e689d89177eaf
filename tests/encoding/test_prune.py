"""Exact alpha search: bounds contain the full grid's values; exact == full on adversarial data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from bids_w2v.encoding import DEFAULT_ALPHAS, cross_validated_scores, prune
from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.basis import project, svd_basis
from bids_w2v.encoding.inner import PLAN_BLOCK, LooSelector
from bids_w2v.encoding.ridge import _standardise

KINDS = ("wide", "ar-noise", "collinear", "near-ties", "constant", "tiny-scale")


def design(kind: str, seed: int, n: int = 90, v: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Adversarial (X, Y): more features than scans, autocorrelated noise, collinear features,
    nearly tied voxels, constant voxels, or data at a tiny scale."""
    rng = np.random.default_rng(seed)
    p = 140 if kind == "wide" else 25
    rank = max(p // 6, 2)
    X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, p))
    X += 0.3 * rng.standard_normal((n, p))
    if kind == "collinear":
        X[:, 1] = X[:, 0]  # duplicated feature
        X[:, 2] = 2.0 * X[:, 3] - X[:, 4]  # exact linear combination
        X[:, 5] = 3.0  # constant feature
    W = rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.3)
    signal = X @ W
    signal /= signal.std(0) + 1e-12
    snr = np.logspace(-3, 1, v)
    noise = rng.standard_normal((n, v))
    if kind in ("ar-noise", "wide"):
        for t in range(1, n):  # AR(1), phi = 0.9
            noise[t] += 0.9 * noise[t - 1]
    Y = signal * np.sqrt(snr) + noise + 3.0 * rng.standard_normal(v)
    if kind == "near-ties":
        Y[:, v // 2 :] = Y[:, : v - v // 2] * (1 + 1e-7) + 1e-6 * rng.standard_normal((n, 1))
        Y[:, 1] = Y[:, 0] + 1e-5 * rng.standard_normal(n)
    if kind == "constant":
        Y[:, :10] = 7.0
        Y[:, 10] = 0.0
        Y[: n // 5, 11:20] = 1.0  # constant on the first test fold's training complement
    if kind == "tiny-scale":
        Y *= 1e-6
    return X, Y


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 16 voxels, so that blocks of similar voxels skip alphas at these sizes."""
    monkeypatch.setitem(PLAN_BLOCK, "cpu", 16)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bounds_contain_the_full_grid_values(kind, dtype) -> None:
    """lo <= computed value <= hi for every alpha and voxel (the guarantee behind the pruning)."""
    ops = get_ops("numpy", "cpu", dtype)
    for seed in range(4):
        X, Y = design(kind, seed)
        Xs, _ = _standardise(X, X[:1])
        sel = LooSelector(ops, svd_basis(ops, Xs), DEFAULT_ALPHAS)
        Yc = ops.asarray(Y - Y.mean(0))
        Yc[:, np.ptp(Y, 0) == 0] = 0.0
        Z = project(ops, svd_basis(ops, Xs).U, Yc)
        lo, hi, split = prune.loo_bounds(sel, Yc, Z, 64)
        order = np.argsort(split, kind="stable")
        values = sel.values(Yc[:, order], Z[:, order], split[order], np.arange(20))
        assert (lo[:, order] <= values).all() and (values <= hi[:, order]).all()


def _selector_and_data(kind: str, seed: int):
    """Float32 selector of a design's (whole-sample) fold, centred data and ``Z = U^T Yc``."""
    ops = get_ops("numpy", "cpu", "float32")
    X, Y = design(kind, seed)
    Xs, _ = _standardise(X, X[:1])
    basis = svd_basis(ops, Xs)
    sel = LooSelector(ops, basis, DEFAULT_ALPHAS)
    Yc = ops.asarray(Y - Y.mean(0))
    Yc[:, np.ptp(Y, 0) == 0] = 0.0
    return sel, Yc, project(ops, basis.U, Yc)


@pytest.mark.parametrize("kind", ["wide", "near-ties", "constant"])
def test_candidate_columns_get_the_same_values_in_both_searches(kind) -> None:
    """Per (block, alpha), the candidates' values do not depend on whether the other voxels are
    evaluated too (full) or skipped (exact), and those others lie above the best candidate."""
    sel, Yc, Z = _selector_and_data(kind, 0)
    lo, hi, split = prune.loo_bounds(sel, Yc, Z, 16)
    skipped = 0
    for idx, alphas, cand in prune.plan(lo, hi, split, 16, prune=True):
        exact = sel.values(Yc[:, idx], Z[:, idx], split[idx], alphas, cand, rest=False)
        full = sel.values(Yc[:, idx], Z[:, idx], split[idx], np.arange(20), cand, rest=True)
        np.testing.assert_array_equal(exact[cand], full[cand])
        assert np.isinf(exact[~cand]).all() and np.isfinite(full).all()
        best = np.where(cand, full, np.inf).min(0)
        assert (full[~cand] > np.broadcast_to(best, full.shape)[~cand]).all()
        skipped += int((~cand).sum())
    assert skipped > 0


@pytest.mark.parametrize("kind", KINDS)
def test_voxels_with_one_candidate_are_decided_without_evaluation(kind) -> None:
    """A voxel whose first-stage bounds leave one candidate gets that alpha with no evaluated
    column (the first minimiser is a candidate), and it is the full grid's choice."""
    decided = 0
    for seed in range(3):
        sel, Yc, Z = _selector_and_data(kind, seed)
        lo, hi, split = prune.loo_bounds(sel, Yc, Z, 16)
        one = prune.candidates(lo, hi).sum(0) == 1
        decided += int(one.sum())
        order = np.argsort(split, kind="stable")  # (values wants voxels sorted by split)
        full = sel.values(Yc[:, order], Z[:, order], split[order], np.arange(20))
        first_min = np.empty(Yc.shape[1], dtype=np.int64)
        first_min[order] = full.argmin(0)
        exact = sel.select(Yc.copy(), Z.copy(), search="exact")
        np.testing.assert_array_equal(exact, sel.select(Yc.copy(), Z.copy(), search="full"))
        np.testing.assert_array_equal(exact[one], first_min[one])
        np.testing.assert_array_equal(exact[one], prune.pick(lo, hi)[one])
        prune.STATS.update(evaluated=0, total=0)
        sel.select(Yc[:, one].copy(), Z[:, one].copy(), search="exact")
        assert prune.STATS["evaluated"] == 0
    assert decided > 0


SLOW = pytest.mark.slow


@pytest.mark.parametrize("inner", ["loo", pytest.param("kfold", marks=SLOW)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=SLOW)])
def test_exact_search_returns_the_full_grid_choice(inner, dtype, backend) -> None:
    """Same alpha and same r for every (fold, voxel), over designs and seeds; alphas pruned."""
    prune.STATS.update(evaluated=0, total=0)
    with threadpool_limits(1):
        for kind in KINDS:
            for seed in range(2):
                X, Y = design(kind, seed)
                kw = {"inner": inner, "dtype": dtype, "backend": backend, "n_folds": 3}
                full = cross_validated_scores(X, Y, alpha_search="full", **kw)
                exact = cross_validated_scores(X, Y, **kw)
                np.testing.assert_array_equal(exact.alphas, full.alphas, err_msg=kind)
                np.testing.assert_array_equal(exact.fold_scores, full.fold_scores, err_msg=kind)
    if inner == "loo":  # the exact searches above skipped alphas (full evaluated all)
        assert prune.STATS["evaluated"] < 0.85 * prune.STATS["total"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("inner", ["loo", "kfold"])
def test_exact_search_on_cuda_returns_the_full_grid_choice(inner, monkeypatch) -> None:
    """The same identity on the GPU (blocks of 16 voxels there too)."""
    monkeypatch.setitem(PLAN_BLOCK, "gpu", 16)
    for kind in KINDS:
        X, Y = design(kind, 0)
        kw = {"inner": inner, "backend": "torch", "device": "cuda", "n_folds": 3}
        full = cross_validated_scores(X, Y, alpha_search="full", **kw)
        exact = cross_validated_scores(X, Y, **kw)
        np.testing.assert_array_equal(exact.alphas, full.alphas, err_msg=kind)
        np.testing.assert_array_equal(exact.fold_scores, full.fold_scores, err_msg=kind)


@pytest.mark.slow
def test_random_designs_over_many_seeds() -> None:
    """Property check: random sizes, scales and noise, float32, exact == full."""
    rng = np.random.default_rng(123)
    with threadpool_limits(1):
        for seed in range(12):
            kind = KINDS[seed % len(KINDS)]
            n = int(rng.integers(40, 120))
            X, Y = design(kind, 100 + seed, n=n, v=int(rng.integers(20, 80)))
            Y *= 10.0 ** rng.uniform(-3, 3)
            full = cross_validated_scores(X, Y, alpha_search="full", n_folds=4)
            exact = cross_validated_scores(X, Y, n_folds=4)
            np.testing.assert_array_equal(exact.alphas, full.alphas)
            np.testing.assert_array_equal(exact.fold_scores, full.fold_scores)


def test_retired_names_run_the_exact_search_and_unknown_is_refused() -> None:
    X, Y = design("wide", 0, v=30)
    exact = cross_validated_scores(X, Y, n_folds=3)
    for name in ("local", "auto"):
        other = cross_validated_scores(X, Y, n_folds=3, alpha_search=name)
        np.testing.assert_array_equal(other.alphas, exact.alphas)
    with pytest.raises(ValueError, match="alpha_search"):
        cross_validated_scores(X, Y, alpha_search="gcv")


def test_candidates_keep_the_first_minimiser_on_exact_ties() -> None:
    lo = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    hi = np.array([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    cand = prune.candidates(lo, hi)
    assert cand[:, 0].tolist() == [True, True, False] and cand[:, 1].all()


def test_alpha_search_flag_reaches_the_fit_node_sidecar_and_methods(
    sim_dataset, tiny_model, tmp_path
):
    """--alpha-search: CLI -> EncodingSettings -> workflow -> FitEncoding input, metadata."""
    import dataclasses

    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.inputs.layout import collect_runs, load_layout
    from bids_w2v.outputs.metadata import analysis_metadata
    from bids_w2v.workflows.base import init_bids_w2v_wf

    root, _, _ = sim_dataset
    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=False)
    cases = (
        ((), "exact", "exact"),
        (("--alpha-search", "full"), "full", "full"),
        (("--alpha-search", "auto"), "auto", "exact"),
        (("--alpha-search", "local", "--inner-cv", "kfold"), "local", "exact"),
    )
    for extra, requested, resolved in cases:
        args = build_parser().parse_args(
            [str(root), str(tmp_path / "out"), "participant", "--model", str(tiny_model), *extra]
        )
        config = dataclasses.replace(build_config(args), bids_dir=root)
        assert args.alpha_search == requested  # retired names are resolved in the configuration
        assert config.encoding.alpha_search == resolved
        runs = collect_runs(layout, "01", "listen", config.space, config.res)
        wf = init_bids_w2v_wf({"01": runs}, config)
        fits = [wf.get_node(n) for n in wf.list_node_names() if n.endswith("fit_layer")]
        assert fits and all(f.inputs.alpha_search == resolved for f in fits)
        meta = analysis_metadata(config, runs)["CrossValidation"]
        assert meta["AlphaSearch"].startswith("every alpha")
    with pytest.raises(SystemExit):
        build_parser().parse_args([str(root), str(tmp_path), "participant", "--alpha-search", "x"])


@pytest.mark.parametrize("kind", ["wide", "collinear", "ar-noise"])
def test_abs_norm_bounds_every_product_with_abs_u(kind) -> None:
    """|| |U| x ||^2 <= lam (v.x)^2 + rho ||x||^2 for nonnegative and signed x, and the bound is
    well below the sqrt(r) ||x|| that holds for any orthonormal U (on spread x)."""
    ops = get_ops("numpy", "cpu", "float32")
    X, _ = design(kind, 0)
    Xs, _ = _standardise(X, X[:1])
    U = svd_basis(ops, Xs).U
    lam, v, rho = prune.abs_norm(ops, U)
    rng = np.random.default_rng(0)
    r = U.shape[1]
    for x in [np.abs(rng.standard_normal((r, 200))), rng.standard_normal((r, 200)),
              np.eye(r), np.ones((r, 1))]:  # fmt: skip
        lhs = ((np.abs(U) @ x) ** 2).sum(0)
        rhs = lam * (v @ x) ** 2 + rho * (x * x).sum(0)
        assert (lhs <= rhs).all()
    x = np.abs(rng.standard_normal((r, 200)))
    bound = np.sqrt(lam * (v @ x) ** 2 + rho * (x * x).sum(0))
    assert np.median(bound / (np.sqrt(r) * np.sqrt((x * x).sum(0)))) < 0.95


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_nonneg_sum_bound_holds_for_working_dtype_products(dtype, backend) -> None:
    """The working-dtype sums of nonnegative terms behind the bounds' error terms (``g |z|``):
    the exact sum of the unrounded operands never exceeds ``computed * up + tiny``, also for
    values that underflow and for terms of very different sizes."""
    ops = get_ops(backend, "cpu", dtype)
    rng = np.random.default_rng(1)
    r = 300
    up, tiny = prune.nonneg_sum_bound(ops, r)
    assert 1.0 < up < 1.0 + 1e-3
    g = rng.random((20, r))  # float64 factors, rounded to the working dtype for the product
    cols = [np.abs(rng.standard_normal(r)), np.full(r, 1e-30), np.full(r, 1e-41),
            np.r_[1e20, np.full(r - 1, 1.0)], np.r_[np.full(r - 1, 1e-42), 1e-30]]  # fmt: skip
    z = np.stack(cols, 1)
    zw = ops.to_numpy(ops.asarray(z)).astype(np.float64)  # |z| as the working dtype holds it
    computed = ops.to_numpy(ops.to_high(ops.asarray(g) @ ops.asarray(z)))
    exact = g @ zw  # float64 of nonnegative terms: relative error ~1e-13, far below up - 1
    assert (exact * (1 - 1e-12) <= computed * up + tiny).all()
