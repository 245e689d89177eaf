"""Encoding engine: parity with scikit-learn / himalaya, backends, exclusions, arguments."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from bids_w2v.encoding import DEFAULT_ALPHAS, EncodingResult, cross_validated_scores
from bids_w2v.encoding.ridge import _standardise

BACKENDS = ["numpy", "torch"]
DTYPES = ["float64", "float32"]
#: (same-alpha share, max |delta r|) required against the reference implementation
TOLERANCES = {"float64": (0.999, 1e-4), "float32": (0.999, 1e-3)}


@cache
def planted(n: int = 200, p: int = 30, v: int = 300, seed: int = 0):
    """Correlated features, sparse weights, SNR log-spaced over voxels, voxel offsets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal((n, p)) @ rng.standard_normal(
        (p, p)
    )
    X = X * rng.uniform(0.5, 3.0, p) + rng.standard_normal(p)
    W = rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.3)
    signal = X @ W
    signal /= signal.std(0)
    snr = np.logspace(-3, 2, v)
    Y = signal * np.sqrt(snr) + rng.standard_normal((n, v)) + 5.0 * rng.standard_normal(v)
    return X, Y


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def reference_fold_results(X, Y, folds, kind: str):
    """Alphas and r per fold from sklearn (LOO) or himalaya (K-fold) on our standardised X."""
    # Small LAPACK calls are much slower with 2 BLAS threads on a shared 2-core machine.
    with threadpool_limits(1):
        return _reference_fold_results(X, Y, folds, kind)


def _reference_fold_results(X, Y, folds, kind: str):
    out = []
    for train, test in folds:
        Xtr, Xte = _standardise(X[train], X[test])
        if kind == "sklearn":
            from sklearn.linear_model import RidgeCV

            model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(Xtr, Y[train])
            alphas = model.alpha_
        else:
            from himalaya.ridge import RidgeCV
            from sklearn.model_selection import KFold

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = RidgeCV(alphas=DEFAULT_ALPHAS, cv=KFold(5), fit_intercept=True)
                model.fit(Xtr, Y[train])
            alphas = model.best_alphas_
        out.append((np.asarray(alphas), pearson(model.predict(Xte), Y[test])))
    return out


@cache
def reference(p: int, kind: str):
    X, Y = planted(p=p)
    folds = cross_validated_scores(X, Y[:, :2], inner="loo").folds
    return reference_fold_results(X, Y, folds, kind)


def assert_parity(res: EncodingResult, ref, dtype: str) -> None:
    min_same, max_dr = TOLERANCES[dtype]
    for k, (alphas, r) in enumerate(ref):
        same = np.isclose(res.alphas[k], alphas, rtol=1e-6).mean()
        assert same >= min_same, f"fold {k}: only {same:.4f} of alphas agree"
        dr = np.abs(res.fold_scores[k] - r).max()
        assert dr <= max_dr, f"fold {k}: max |delta r| = {dr:.2e}"


@pytest.mark.parametrize("p", [30, 300], ids=["p<n", "p>n"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loo_matches_sklearn_ridgecv(backend: str, dtype: str, p: int) -> None:
    X, Y = planted(p=p)
    res = cross_validated_scores(X, Y, backend=backend, dtype=dtype)
    assert len(np.unique(res.alphas)) >= 8  # the planted SNRs spread alphas over the grid
    assert_parity(res, reference(p, "sklearn"), dtype)


@pytest.mark.parametrize("p", [30, 300], ids=["p<n", "p>n"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_kfold_matches_himalaya_ridgecv(backend: str, p: int) -> None:
    X, Y = planted(p=p)
    res = cross_validated_scores(X, Y, inner="kfold", backend=backend, dtype="float64")
    assert len(np.unique(res.alphas)) >= 8
    assert_parity(res, reference(p, "himalaya"), "float64")


def test_kfold_float32_close_to_himalaya() -> None:
    X, Y = planted(p=30)
    res = cross_validated_scores(X, Y, inner="kfold", dtype="float32")
    assert_parity(res, reference(30, "himalaya"), "float32")


@pytest.mark.parametrize("inner", ["loo", "kfold"])
def test_numpy_and_torch_agree(inner: str) -> None:
    X, Y = planted(p=30)
    a = cross_validated_scores(X, Y, inner=inner, backend="numpy", dtype="float64")
    b = cross_validated_scores(X, Y, inner=inner, backend="torch", dtype="float64")
    np.testing.assert_array_equal(a.alphas, b.alphas)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("inner", ["loo", "kfold"])
def test_cuda_matches_numpy(inner: str) -> None:
    X, Y = planted(p=300)
    a = cross_validated_scores(X, Y, inner=inner, dtype="float32")
    b = cross_validated_scores(X, Y, inner=inner, backend="torch", device="cuda", dtype="float32")
    assert (a.alphas == b.alphas).mean() >= 0.999
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_voxel_chunks_do_not_change_results() -> None:
    X, Y = planted(p=30)
    a = cross_validated_scores(X, Y, dtype="float64")
    b = cross_validated_scores(X, Y, dtype="float64", voxel_chunk=7)
    np.testing.assert_array_equal(a.alphas, b.alphas)
    np.testing.assert_allclose(a.fold_scores, b.fold_scores, atol=1e-10)


def test_signal_gives_high_scores_and_noise_near_zero() -> None:
    rng = np.random.default_rng(1)
    n, p, v = 300, 20, 200
    X = rng.standard_normal((n, p))
    noise = rng.standard_normal((n, v))
    null = cross_validated_scores(X, noise)
    assert abs(np.mean(null.scores)) < 0.05
    signal = X @ rng.standard_normal((p, v))
    strong = cross_validated_scores(X, signal / signal.std(0) + noise)
    assert np.mean(strong.scores) > 0.6
    assert (strong.scores > null.scores).mean() > 0.99


def test_groups_give_leave_one_run_out() -> None:
    X, Y = planted(p=30)
    groups = np.repeat([3, 1, 2, 0], 50)
    res = cross_validated_scores(X, Y, groups=groups, n_folds=3)
    assert res.fold_scores.shape == (4, Y.shape[1]) and res.alphas.shape == (4, Y.shape[1])
    for k, (train, test) in enumerate(res.folds):
        np.testing.assert_array_equal(test, np.flatnonzero(groups == k))
        np.testing.assert_array_equal(train, np.flatnonzero(groups != k))
    # same as explicit per-fold fits of sklearn
    assert_parity(res, reference_fold_results(X, Y, res.folds, "sklearn"), "float32")


def test_gap_drops_training_samples_near_the_test_block() -> None:
    X, Y = planted(p=30)
    res = cross_validated_scores(X, Y[:, :20], gap=5)
    for train, test in res.folds:
        assert np.abs(train[:, None] - test[None, :]).min() > 5
        assert train.size == 200 - test.size - 5 * (1 + (0 < test[0] and test[-1] < 199))
    assert_parity(res, reference_fold_results(X, Y[:, :20], res.folds, "sklearn"), "float32")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_voxels_are_excluded(backend: str) -> None:
    X, Y = planted(p=30)
    Y = Y[:, :40].copy()
    bad = [3, 7, 11, 20]
    Y[5, 3] = np.nan
    Y[:, 7] = 2.5  # constant
    Y[0, 11] = np.inf
    Y[:, 20] = 0.0
    res = cross_validated_scores(X, Y, backend=backend, dtype="float64", return_predictions=True)
    expected = np.zeros(40, bool)
    expected[bad] = True
    np.testing.assert_array_equal(res.excluded, expected)
    assert (res.n_excluded_nonfinite, res.n_excluded_constant) == (2, 2)
    assert np.isnan(res.scores[bad]).all() and np.isnan(res.alphas[:, bad]).all()
    assert np.isnan(res.fold_scores[:, bad]).all() and np.isnan(res.predictions[:, bad]).all()
    good = ~expected
    assert np.isfinite(res.scores[good]).all() and np.isfinite(res.predictions[:, good]).all()
    ref = cross_validated_scores(X, Y[:, good], backend=backend, dtype="float64")
    np.testing.assert_allclose(res.scores[good], ref.scores, atol=1e-10)


def test_constant_voxel_in_one_fold_gives_zero_r_there() -> None:
    X, Y = planted(p=30)
    Y = Y[:, :10].copy()
    Y[:40, 0] = 1.0  # constant over the first test fold only
    Y[40:, 1] = 1.0  # constant on the first fold's training set only
    res = cross_validated_scores(X, Y, return_predictions=True)
    assert not res.excluded[:2].any()
    assert res.fold_scores[0, 0] == 0.0 and res.fold_scores[0, 1] == 0.0
    np.testing.assert_allclose(res.predictions[:40, 1], 1.0)  # predicted by its mean
    assert np.isfinite(res.fold_scores).all()


def test_predictions_reproduce_fold_scores() -> None:
    X, Y = planted(p=30)
    res = cross_validated_scores(X, Y[:, :50], dtype="float64", return_predictions=True)
    assert res.predictions.shape == (200, 50)
    for k, (_, test) in enumerate(res.folds):
        r = pearson(res.predictions[test], Y[test, :50])
        np.testing.assert_allclose(r, res.fold_scores[k], atol=1e-8)
    np.testing.assert_allclose(res.scores, res.fold_scores.mean(0))
    assert cross_validated_scores(X, Y[:, :5]).predictions is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_are_not_modified(backend: str) -> None:
    X, Y = planted(p=30)
    X32, Y32 = X.astype(np.float32), Y[:, :20].astype(np.float32)
    X0, Y0 = X32.copy(), Y32.copy()
    for inner in ("loo", "kfold"):
        cross_validated_scores(X32, Y32, inner=inner, backend=backend)
    np.testing.assert_array_equal(X32, X0)
    np.testing.assert_array_equal(Y32, Y0)


def test_torch_float32_refuses_reduced_precision_products() -> None:
    """TF32/bf16 products round far more than the exact search's bounds allow: a clear error,
    and float64 (not affected) still runs."""
    X, Y = planted(p=30)
    torch.set_float32_matmul_precision("medium")
    try:
        with pytest.raises(ValueError, match="IEEE float32.*set_float32_matmul_precision"):
            cross_validated_scores(X, Y[:, :10], backend="torch", dtype="float32")
        cross_validated_scores(X, Y[:, :10], backend="torch", dtype="float64")
    finally:
        torch.set_float32_matmul_precision("highest")
    cross_validated_scores(X, Y[:, :10], backend="torch", dtype="float32")


def test_reduced_precision_sees_the_cublas_override(monkeypatch) -> None:
    from bids_w2v.encoding.backends import reduced_precision

    assert reduced_precision(torch, "cuda") == "" and reduced_precision(torch, "cpu") == ""
    monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
    assert "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in reduced_precision(torch, "cuda")
    assert reduced_precision(torch, "cpu") == ""  # cuBLAS only


def test_defaults() -> None:
    np.testing.assert_allclose(DEFAULT_ALPHAS, np.logspace(1, 8, 20))
    X, Y = planted(p=30)
    res = cross_validated_scores(X, Y[:, :5])
    assert len(res.folds) == 5 and res.alphas.shape == (5, 5)
    assert set(np.unique(res.alphas)) <= set(DEFAULT_ALPHAS)
    assert res.scores.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"Y": np.zeros((199, 3))},
        {"Y": np.zeros(200)},
        {"X": np.zeros((200, 2, 2))},
        {"X": np.full((200, 3), np.nan)},
        {"n_folds": 1},
        {"n_folds": 101},
        {"inner": "gcv"},
        {"inner": "kfold", "inner_folds": 1},
        {"alphas": []},
        {"alphas": [1.0, -1.0]},
        {"alphas": [np.inf]},
        {"backend": "jax"},
        {"backend": "numpy", "device": "cuda"},
        {"dtype": "float16"},
        {"dtype": "int"},
        {"voxel_chunk": 0},
        {"gap": -1},
        {"gap": 98, "n_folds": 2},
        {"groups": np.zeros(200)},
        {"groups": np.arange(10)},
        {"features_pca": 0},
        {"features_pca": 31},
        {"features_pca": 2.5},
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    X, Y = planted(p=30)
    kwargs = {"X": X, "Y": Y[:, :3], **kwargs}
    with pytest.raises(ValueError):
        cross_validated_scores(kwargs.pop("X"), kwargs.pop("Y"), **kwargs)


def test_block_width_keeps_blocks_cache_sized() -> None:
    from bids_w2v.encoding.backends import get_ops
    from bids_w2v.encoding.inner import BLOCK_BYTES, block_width

    ops = get_ops("numpy", "cpu", "float32")
    assert block_width(ops, 1600, 200000) * 1600 * 4 <= BLOCK_BYTES
    assert block_width(ops, 1600, 100) == 100
    assert block_width(ops, 10**7, 5000) == 256  # never thinner than 256 voxels


def test_blocks_do_not_change_results(monkeypatch) -> None:
    """Voxel blocks inside a chunk (cache blocking) give the same alphas and scores."""
    import bids_w2v.encoding.inner as inner_mod

    X, Y = planted(p=30)
    a = cross_validated_scores(X, Y, dtype="float64")
    monkeypatch.setattr(inner_mod, "BLOCK_BYTES", 1)  # 256-voxel blocks: 2 blocks of 300
    b = cross_validated_scores(X, Y, dtype="float64")
    np.testing.assert_array_equal(a.alphas, b.alphas)
    np.testing.assert_allclose(a.fold_scores, b.fold_scores, atol=1e-12)


def test_too_few_samples_for_n_folds() -> None:
    with pytest.raises(ValueError, match="2 \\* n_folds"):
        cross_validated_scores(np.random.randn(9, 2), np.random.randn(9, 2), n_folds=5)


def test_progress_is_called_once_per_fold_and_voxel_chunk():
    from bids_w2v.encoding import cross_validated_scores

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 5)), rng.standard_normal((60, 25))
    Y[:, 3] = 1.0  # an excluded (constant) voxel is in no chunk
    calls = []
    cross_validated_scores(
        X, Y, n_folds=3, voxel_chunk=10, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(i, 9) for i in range(1, 10)]  # 3 folds x ceil(24 / 10) chunks
