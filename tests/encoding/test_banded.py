"""Banded ridge and variance partitioning (bids_w2v.encoding.banded).

The reference is himalaya's own ``BandedRidgeCV`` run here in a scikit-learn loop, and a
simulation with planted regions written with numpy alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.ridge import BandedRidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from bids_w2v.encoding.banded import banded_scores, himalaya_backend_name

ALPHAS = np.logspace(-2, 4, 7)


def _data(seed=0, n=240, p=(12, 6), v=30):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, k)) for k in p]
    W = [rng.standard_normal((k, v)) * 0.3 for k in p]
    Y = Xs[0] @ W[0] + Xs[1] @ W[1] + rng.standard_normal((n, v)) * 2.0
    return Xs, Y


def _himalaya_reference(Xs, Y, *, n_iter, seed, n_folds=4):
    """Held-out r² per fold of himalaya's BandedRidgeCV after per-fold standard scaling."""
    scores = []
    for train, test in KFold(n_folds).split(Y):
        Ztr, Zte = [], []
        for x in Xs:
            scaler = StandardScaler().fit(x[train])
            Ztr.append(scaler.transform(x[train]).astype("float32"))
            Zte.append(scaler.transform(x[test]).astype("float32"))
        model = BandedRidgeCV(
            groups="input",
            solver_params=dict(n_iter=n_iter, alphas=ALPHAS, progress_bar=False),
            fit_intercept=True,
            cv=KFold(5),
            random_state=seed,
        )
        model.fit(Ztr, Y[train].astype("float32"))
        pred = np.asarray(model.predict(Zte), dtype=np.float64)
        scores.append(r2_score(Y[test], pred, multioutput="raw_values"))
    return np.mean(scores, 0)


@pytest.mark.parametrize("seed", [0, 3])
def test_joint_fit_equals_himalaya_banded_ridge(seed):
    Xs, Y = _data(seed)
    ref = _himalaya_reference(Xs, Y, n_iter=8, seed=seed)
    res = banded_scores(
        Xs, Y, names=["a", "b"], alphas=ALPHAS, n_folds=4, n_iter=8, seed=seed,
        partition=False, solver="himalaya",
    )  # fmt: skip
    np.testing.assert_allclose(res.r2, ref, atol=1e-3)
    assert res.deltas.shape == (4, 2, Y.shape[1])
    assert np.isnan(res.unique).all()


def test_single_space_model_equals_himalaya_ridge_over_the_grid():
    Xs, Y = _data(1)
    res = banded_scores(
        Xs, Y, names=["a", "b"], alphas=ALPHAS, n_folds=4, n_iter=5, seed=1, solver="himalaya"
    )
    # the model without b is a ridge of a alone, alpha per voxel by inner 5-fold
    from himalaya.ridge import RidgeCV

    scores = []
    for train, test in KFold(4).split(Y):
        sc = StandardScaler().fit(Xs[0][train])
        m = RidgeCV(alphas=ALPHAS, fit_intercept=True, cv=KFold(5))
        m.fit(sc.transform(Xs[0][train]).astype("float32"), Y[train].astype("float32"))
        pred = np.asarray(m.predict(sc.transform(Xs[0][test]).astype("float32")), dtype=float)
        scores.append(r2_score(Y[test], pred, multioutput="raw_values"))
    np.testing.assert_allclose(res.r2_without[1], np.mean(scores, 0), atol=1e-3)
    np.testing.assert_allclose(res.unique, res.r2[None] - res.r2_without)
    np.testing.assert_allclose(res.shared, res.r2_without.sum(0) - res.r2)


def _planted(seed=0, n=400, per_region=20):
    """Speech-like and acoustic-like spaces (correlated), and four planted regions."""
    rng = np.random.default_rng(seed)
    acoustic = rng.standard_normal((n, 8))
    # the "speech" space shares part of its variance with the acoustic one
    speech = np.hstack(
        [acoustic[:, :4] @ rng.standard_normal((4, 4)), rng.standard_normal((n, 12))]
    )
    own_speech = speech[:, 4:]  # what only the speech space carries
    noise = rng.standard_normal((n, 4 * per_region))
    Y = noise.copy()
    r = slice(0, per_region)  # speech-only
    Y[:, r] += own_speech @ rng.standard_normal((12, per_region)) * 0.5
    r = slice(per_region, 2 * per_region)  # acoustic-only
    Y[:, r] += acoustic[:, 4:] @ rng.standard_normal((4, per_region)) * 0.8
    r = slice(2 * per_region, 3 * per_region)  # shared: the acoustic part both spaces carry
    Y[:, r] += acoustic[:, :4] @ rng.standard_normal((4, per_region)) * 0.8
    labels = np.repeat(["speech", "acoustic", "shared", "none"], per_region)
    return [speech, acoustic], Y, labels


def test_unique_variance_recovers_planted_regions():
    Xs, Y, labels = _planted()
    res = banded_scores(Xs, Y, names=["speech", "acoustic"], alphas=ALPHAS, n_iter=10)
    u_speech, u_acoustic = res.unique

    def mean(a, lab):
        return float(a[labels == lab].mean())

    assert mean(u_speech, "speech") > 0.1
    assert mean(u_acoustic, "acoustic") > 0.1
    for lab in ("acoustic", "shared", "none"):
        assert abs(mean(u_speech, lab)) < 0.03
    for lab in ("speech", "shared", "none"):
        assert abs(mean(u_acoustic, lab)) < 0.03
    assert mean(res.shared, "shared") > 0.1
    assert abs(mean(res.shared, "speech")) < 0.03
    # voxel by voxel: the larger unique part names the planted region
    for lab, k in (("speech", 0), ("acoustic", 1)):
        sel = labels == lab
        assert (np.argmax(res.unique[:, sel], 0) == k).mean() >= 0.9


def test_excluded_voxels_and_runs_folds():
    Xs, Y = _data(2, v=5)
    Y[:, 0] = 1.0
    Y[3, 1] = np.nan
    groups = np.repeat([0, 1, 2], Y.shape[0] // 3)
    res = banded_scores(Xs, Y, alphas=ALPHAS, groups=groups, n_iter=3)
    assert res.excluded.tolist() == [True, True, False, False, False]
    assert np.isnan(res.r2[:2]).all() and np.isfinite(res.r2[2:]).all()
    assert len(res.folds) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(names=["a", "a"]), "unique"),
        (dict(n_iter=0), "n_iter"),
        (dict(inner_folds=1), "inner_folds"),
        (dict(alphas=[-1.0]), "alphas"),
        (dict(backend="jax"), "backend"),
        (dict(n_folds=40), "Outer fold"),
    ],
)
def test_bad_settings_are_explained(kwargs, message):
    Xs, Y = _data(0, n=60, v=3)
    with pytest.raises(ValueError, match=message):
        banded_scores(Xs, Y, **kwargs)


def test_bad_feature_shapes_are_explained():
    Xs, Y = _data(0, n=60, v=3)
    with pytest.raises(ValueError, match="rows"):
        banded_scores([Xs[0], Xs[1][:-1]], Y, names=["w2v", "mel"])
    Xs[1][0, 0] = np.inf
    with pytest.raises(ValueError, match="mel.*infinite"):
        banded_scores(Xs, Y, names=["w2v", "mel"])


def test_backend_names():
    assert himalaya_backend_name("numpy", "cpu") == "numpy"
    assert himalaya_backend_name("torch", "cpu") == "torch"
    assert himalaya_backend_name("torch", "cuda:1") == "torch_cuda"
    with pytest.raises(ValueError):
        himalaya_backend_name("numpy", "cuda")


@pytest.mark.parametrize("solver", ["loo", "himalaya"])
def test_torch_backend_matches_numpy(solver):
    pytest.importorskip("torch")
    Xs, Y = _data(4, v=10)
    kw = dict(alphas=ALPHAS, n_iter=4, partition=False, solver=solver)
    a = banded_scores(Xs, Y, **kw)
    b = banded_scores(Xs, Y, backend="torch", **kw)
    np.testing.assert_allclose(a.r2, b.r2, atol=1e-3)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
@pytest.mark.parametrize("solver", ["loo", "himalaya"])
def test_cuda_backend_matches_numpy(solver):
    Xs, Y = _data(5, v=10)
    kw = dict(alphas=ALPHAS, n_iter=4, partition=False, solver=solver)
    a = banded_scores(Xs, Y, **kw)
    b = banded_scores(Xs, Y, backend="torch", device="cuda", **kw)
    np.testing.assert_allclose(a.r2, b.r2, atol=1e-3)
