"""Banded ridge by efficient leave-one-out (bids_w2v.encoding.banded_loo, solver="loo").

Two references, neither built from the analysis code: a brute-force leave-one-out with
scikit-learn's ``Ridge`` refitted without each scan, for every weighting of the spaces (drawn
by himalaya's own ``generate_dirichlet_samples``) and every alpha; and himalaya's
``GroupRidgeCV`` with one inner fold per scan (leave-one-out, ``KFold(n_train)``) and the same
random search.
"""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.kernel_ridge import generate_dirichlet_samples
from himalaya.ridge import GroupRidgeCV
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.banded import banded_scores
from bids_w2v.encoding.banded_loo import draws, fit_predict_loo

ALPHAS = np.logspace(-1, 4, 8)
CONC = [0.1, 1.0]  # himalaya's default concentrations


def _data(seed=0, n=48, p=(14, 8), v=24, n_test=12):
    """Standardised training features, and test features, of two spaces; mixed voxels."""
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((n + n_test, k)) for k in p]
    w = rng.uniform(0, 1, (2, v))  # each voxel its own mix of the spaces
    Y = sum(x @ rng.standard_normal((x.shape[1], v)) * 0.3 * wi for x, wi in zip(X, w, strict=True))
    Y = Y + rng.standard_normal(Y.shape) * 1.5 + 3.0
    Xtr, Xte = [], []
    for x in X:
        sc = StandardScaler().fit(x[:n])
        Xtr.append(sc.transform(x[:n]))
        Xte.append(sc.transform(x[n:]))
    return Xtr, Y[:n], Xte, Y[n:]


def _gammas(n_iter, n_spaces, seed):
    g = np.asarray(generate_dirichlet_samples(n_iter, n_spaces, CONC, random_state=seed))
    g[0] = 1.0 / n_spaces  # himalaya's first weighting is the uniform one
    return g


def _brute_force(Xtr, Ytr, Xte, gammas):
    """Per voxel the (weighting, alpha) of least leave-one-out error, refitted: sklearn only."""
    n = Ytr.shape[0]
    loo = []  # (draw, alpha) -> per-voxel sum of squared leave-one-out errors
    for g in gammas:
        Xg = np.hstack([x * np.sqrt(gi) for x, gi in zip(Xtr, g, strict=True)])
        for a in ALPHAS:
            err = np.zeros(Ytr.shape[1])
            for i in range(n):
                keep = np.arange(n) != i
                m = Ridge(alpha=a, fit_intercept=True).fit(Xg[keep], Ytr[keep])
                err += (m.predict(Xg[i : i + 1])[0] - Ytr[i]) ** 2
            loo.append(err)
    best = np.argmin(np.array(loo), 0)  # draw-major: the first draw, then alpha, on ties
    d_idx, a_idx = np.divmod(best, len(ALPHAS))
    deltas = np.log(gammas[d_idx].T / ALPHAS[a_idx][None])
    pred = np.zeros((Xte[0].shape[0], Ytr.shape[1]))
    for j in range(Ytr.shape[1]):
        g = gammas[d_idx[j]]
        Xg = np.hstack([x * np.sqrt(gi) for x, gi in zip(Xtr, g, strict=True)])
        Xt = np.hstack([x * np.sqrt(gi) for x, gi in zip(Xte, g, strict=True)])
        m = Ridge(alpha=ALPHAS[a_idx[j]], fit_intercept=True).fit(Xg, Ytr[:, j])
        pred[:, j] = m.predict(Xt)
    return deltas, pred


@pytest.mark.parametrize("search", ["exact", "full"])
def test_choice_and_prediction_equal_brute_force_leave_one_out(search):
    Xtr, Ytr, Xte, _ = _data(0, n=36, v=12)
    gammas = _gammas(4, 2, seed=2)
    ref_deltas, ref_pred = _brute_force(Xtr, Ytr, Xte, gammas)
    Y0 = Ytr.copy()
    pred, deltas = fit_predict_loo(
        get_ops("numpy", "cpu", "float64"), Xtr, Ytr, Xte,
        alphas=ALPHAS, gammas=gammas, search=search,
    )  # fmt: skip
    np.testing.assert_allclose(deltas, ref_deltas, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pred, ref_pred, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(Ytr, Y0)  # the caller's data are left alone


def test_draws_are_himalayas():
    np.testing.assert_array_equal(draws(7, 3, 5, CONC), _gammas(7, 3, 5))
    np.testing.assert_array_equal(draws(7, 1, 5, CONC), np.ones((1, 1)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_equals_himalaya_group_ridge_with_leave_one_out(dtype):
    Xtr, Ytr, Xte, _ = _data(1, n=50, p=(20, 10), v=40)
    n_iter, seed = 6, 3
    model = GroupRidgeCV(
        groups="input",
        solver_params=dict(
            n_iter=n_iter, concentration=CONC, alphas=ALPHAS, progress_bar=False, warn=False
        ),
        cv=KFold(Ytr.shape[0]),  # one scan per inner fold: leave-one-out
        fit_intercept=True,
        random_state=seed,
    )
    model.fit(Xtr, Ytr)
    pred, deltas = fit_predict_loo(
        get_ops("numpy", "cpu", dtype), Xtr, Ytr, Xte,
        alphas=ALPHAS, gammas=draws(n_iter, 2, seed, CONC),
    )  # fmt: skip
    same = np.isclose(deltas, np.asarray(model.deltas_), rtol=0, atol=1e-6).all(0)
    assert same.mean() >= (1.0 if dtype == "float64" else 0.95)
    ok = same  # a voxel whose float32 criterion ties another choice may differ
    np.testing.assert_allclose(pred[:, ok], np.asarray(model.predict(Xte))[:, ok], atol=1e-4)


def test_banded_scores_equal_himalaya_leave_one_out_per_fold():
    """Outer folds, standardisation and r² of banded_scores around the LOO banded ridge."""
    rng = np.random.default_rng(4)
    n, v = 96, 30
    Xs = [rng.standard_normal((n, 12)), rng.standard_normal((n, 6))]
    Y = Xs[0] @ rng.standard_normal((12, v)) * 0.3 + Xs[1] @ rng.standard_normal((6, v)) * 0.4
    Y += rng.standard_normal((n, v)) * 1.5
    res = banded_scores(
        Xs, Y, alphas=ALPHAS, n_folds=4, n_iter=5, seed=1, partition=False, dtype="float64"
    )
    scores, deltas = [], []
    for train, test in KFold(4).split(Y):
        Ztr, Zte = [], []
        for x in Xs:
            sc = StandardScaler().fit(x[train])
            Ztr.append(sc.transform(x[train]))
            Zte.append(sc.transform(x[test]))
        model = GroupRidgeCV(
            groups="input",
            solver_params=dict(n_iter=5, concentration=CONC, alphas=ALPHAS, progress_bar=False),
            cv=KFold(train.size),
            fit_intercept=True,
            random_state=1,
        )
        model.fit(Ztr, Y[train])
        scores.append(r2_score(Y[test], np.asarray(model.predict(Zte)), multioutput="raw_values"))
        deltas.append(np.asarray(model.deltas_))
    np.testing.assert_allclose(res.r2, np.mean(scores, 0), atol=1e-3)
    np.testing.assert_allclose(res.deltas, np.array(deltas), atol=1e-6)


def test_exact_search_equals_full_search():
    Xtr, Ytr, Xte, _ = _data(5, n=120, p=(40, 12), v=400, n_test=20)
    gammas = draws(10, 2, 0, CONC)
    ops = get_ops("numpy", "cpu", "float32")
    a = fit_predict_loo(ops, Xtr, Ytr, Xte, alphas=ALPHAS, gammas=gammas, search="exact")
    b = fit_predict_loo(ops, Xtr, Ytr, Xte, alphas=ALPHAS, gammas=gammas, search="full")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-5 * np.abs(Ytr).max())


def test_three_spaces_partition_models_are_banded_ridges_of_the_others():
    rng = np.random.default_rng(6)
    n, v = 80, 10
    Xs = [rng.standard_normal((n, k)) for k in (6, 5, 4)]
    Y = sum(x @ rng.standard_normal((x.shape[1], v)) * 0.4 for x in Xs)
    Y = Y + rng.standard_normal((n, v))
    kw = dict(alphas=ALPHAS, n_folds=4, n_iter=4, seed=2)
    res = banded_scores(Xs, Y, **kw)
    without_0 = banded_scores(Xs[1:], Y, partition=False, **kw)
    np.testing.assert_allclose(res.r2_without[0], without_0.r2)
    np.testing.assert_allclose(res.unique, res.r2[None] - res.r2_without)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(solver="ridge"), "solver must be one of"), (dict(search="fast"), "search must be")],
)
def test_bad_solver_or_search_is_explained(kwargs, message):
    Xtr, Ytr, Xte, _ = _data(0, n=40, v=3)
    with pytest.raises(ValueError, match=message):
        banded_scores(Xtr, Ytr, **kwargs)


@pytest.mark.parametrize(
    ("device", "seed", "shape", "n_draws"),
    [
        ("cpu", 7, dict(v=30), 5),
        pytest.param(
            "cuda", 8, dict(n=200, p=(60, 20), v=500, n_test=40), 8,
            marks=pytest.mark.skipif("not __import__('torch').cuda.is_available()"),
        ),
    ],
)  # fmt: skip
def test_torch_matches_numpy(device, seed, shape, n_draws):
    pytest.importorskip("torch")
    Xtr, Ytr, Xte, _ = _data(seed, **shape)
    g = draws(n_draws, 2, 0, CONC)
    a = fit_predict_loo(get_ops("numpy", "cpu", "float32"), Xtr, Ytr, Xte, alphas=ALPHAS, gammas=g)
    b = fit_predict_loo(get_ops("torch", device, "float32"), Xtr, Ytr, Xte, alphas=ALPHAS, gammas=g)
    ok = np.isclose(a[1], b[1]).all(0)
    assert ok.mean() >= 0.95
    np.testing.assert_allclose(a[0][:, ok], b[0][:, ok], atol=1e-3 * Ytr.std())
