"""``features_pca``: PCA of the features fitted inside each training fold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bids_w2v.encoding import DEFAULT_ALPHAS, cross_validated_scores
from bids_w2v.encoding.pca import check_n_components


def data(n: int = 150, p: int = 40, v: int = 60, seed: int = 0):
    """Features with a few strong directions; voxels read out the features at varied SNR."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)) @ rng.standard_normal((6, p)) + 0.5 * rng.standard_normal(
        (n, p)
    )
    X = X * rng.uniform(0.5, 4.0, p) + rng.standard_normal(p)
    signal = X @ rng.standard_normal((p, v))
    signal /= signal.std(0)
    Y = signal * np.logspace(-1, 1, v) + rng.standard_normal((n, v)) + 3.0
    return X, Y


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("n_components", [5, 25])
def test_pca_matches_sklearn_pipeline_for_a_fixed_alpha(backend: str, n_components: int) -> None:
    X, Y = data()
    alpha = 30.0
    res = cross_validated_scores(
        X,
        Y,
        alphas=[alpha],
        features_pca=n_components,
        backend=backend,
        dtype="float64",
        return_predictions=True,
    )
    for train, test in res.folds:
        pipe = make_pipeline(StandardScaler(), PCA(n_components), Ridge(alpha=alpha))
        pipe.fit(X[train], Y[train])
        np.testing.assert_allclose(res.predictions[test], pipe.predict(X[test]), atol=1e-8)
    # not the same as without PCA: the option does something
    full = cross_validated_scores(X, Y, alphas=[alpha], dtype="float64", return_predictions=True)
    assert np.abs(full.predictions - res.predictions).max() > 1e-2


def test_pca_with_loo_alpha_choice_matches_sklearn_ridgecv_pipeline() -> None:
    X, Y = data()
    res = cross_validated_scores(X, Y, features_pca=10, dtype="float64")
    for k, (train, test) in enumerate(res.folds):
        pipe = make_pipeline(
            StandardScaler(), PCA(10), RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True)
        ).fit(X[train], Y[train])
        np.testing.assert_allclose(res.alphas[k], pipe[-1].alpha_)
        pred = pipe.predict(X[test])
        pc, yc = pred - pred.mean(0), Y[test] - Y[test].mean(0)
        r = (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))
        np.testing.assert_allclose(res.fold_scores[k], r, atol=1e-8)


def test_pca_is_fitted_on_the_training_fold_only() -> None:
    """Changing the other test samples of a fold leaves a test prediction unchanged."""
    X, Y = data()
    kwargs = {"alphas": [10.0], "features_pca": 5, "dtype": "float64", "return_predictions": True}
    res = cross_validated_scores(X, Y, **kwargs)
    train, test = res.folds[0]
    X2 = X.copy()
    rng = np.random.default_rng(5)
    # strong new variance on the test rows (but the first): a PCA that saw them would change
    X2[test[1:]] += 50.0 * rng.standard_normal((test.size - 1, 1)) * rng.standard_normal(40)
    res2 = cross_validated_scores(X2, Y, **kwargs)
    np.testing.assert_allclose(res2.predictions[test[0]], res.predictions[test[0]], atol=1e-10)
    # while the same change made on the training rows does change it
    X3 = X.copy()
    X3[train[1:]] += 50.0 * rng.standard_normal((train.size - 1, 1)) * rng.standard_normal(40)
    res3 = cross_validated_scores(X3, Y, **kwargs)
    assert np.abs(res3.predictions[test[0]] - res.predictions[test[0]]).max() > 1e-3


def test_pca_recovers_a_low_dimensional_signal() -> None:
    """Signal carried by the leading components: PCA keeps the score, noise stays at 0."""
    X, Y = data(n=300, v=40)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(Y.shape)
    res = cross_validated_scores(X, np.hstack([Y, noise]), features_pca=8)
    assert res.scores[:40].mean() > 0.5
    assert abs(res.scores[40:].mean()) < 0.05


def test_check_n_components() -> None:
    assert check_n_components(None, 10, 5) is None
    assert check_n_components(np.int64(5), 10, 5) == 5
    with pytest.raises(ValueError, match="at most 9 components"):
        check_n_components(12, 10, 30)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError):
            check_n_components(bad, 100, 30)


def test_features_pca_flag_reaches_the_fit_node_and_sidecar(sim_dataset, tiny_model, tmp_path):
    """--features-pca N: CLI -> EncodingSettings -> workflow -> FitEncoding input, metadata."""
    import dataclasses

    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.inputs.layout import collect_runs, load_layout
    from bids_w2v.outputs.metadata import analysis_metadata
    from bids_w2v.workflows.base import init_bids_w2v_wf

    root, _, _ = sim_dataset

    def config_for(*extra):
        args = build_parser().parse_args(
            [str(root), str(tmp_path / "out"), "participant", "--model", str(tiny_model), *extra]
        )
        return dataclasses.replace(build_config(args), bids_dir=root)

    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=False)
    for extra, expected in (((), 0), (("--features-pca", "3"), 3)):
        config = config_for(*extra)
        assert config.encoding.features_pca == (expected or None)
        runs = collect_runs(layout, "01", "listen", config.space, config.res)
        wf = init_bids_w2v_wf({"01": runs}, config)
        fits = [wf.get_node(n) for n in wf.list_node_names() if n.endswith("fit_layer")]
        assert fits and all(f.inputs.features_pca == (expected or None) for f in fits)
        meta = analysis_metadata(config, runs)["CrossValidation"]
        assert ("FeaturePCA" in meta) == bool(expected)
    with pytest.raises(SystemExit):
        build_parser().parse_args([str(root), str(tmp_path), "participant", "--features-pca", "0"])
