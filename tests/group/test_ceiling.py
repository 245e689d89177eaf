"""The authors' noise ceiling against a direct scikit-learn pipeline (their code's steps)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.group.ceiling import (
    crossval_ceiling,
    kfold_unshuffled,
    paper_ceiling,
    pca_fit_transform,
    ridge_loo_fit,
)

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.model_selection import KFold, cross_val_predict  # noqa: E402


def _shared_signal(rng, n_scans, n_voxels, noise):
    signal = rng.standard_normal((n_scans, 5)) @ rng.standard_normal((5, n_voxels))
    target = signal + noise * rng.standard_normal((n_scans, n_voxels))
    others = signal + noise * rng.standard_normal((n_scans, n_voxels))
    return target, others


def _sklearn_ceiling(target, others, n_components):
    """compute_noise_ceiling.py's steps, with exact PCA (the authors' PCA() picks a randomized
    solver on large data, an approximation of the same components)."""
    pca_y = PCA(n_components=n_components, svd_solver="full")
    y = pca_y.fit_transform(target)
    x = PCA(n_components=n_components, svd_solver="full").fit_transform(others)
    pred = cross_val_predict(RidgeCV(), X=x, y=y, cv=KFold(10, shuffle=False))
    pred = pca_y.inverse_transform(pred)
    return np.array([np.corrcoef(pred[:, v], target[:, v])[0, 1] for v in range(target.shape[1])])


@pytest.mark.parametrize(
    ("n_scans", "n_voxels", "n_components", "noise"),
    [(120, 300, 100, 1.0), (203, 40, 30, 2.0), (95, 150, 20, 0.3)],
)
def test_paper_ceiling_equals_sklearn_pipeline(n_scans, n_voxels, n_components, noise):
    rng = np.random.default_rng(n_scans)
    target, others = _shared_signal(rng, n_scans, n_voxels, noise)
    ours = paper_ceiling(target, others, n_components=n_components)
    expected = _sklearn_ceiling(target, others, n_components)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-8)


def test_paper_ceiling_selects_each_default_alpha():
    """The alpha chosen by leave-one-out is RidgeCV's, whichever of 0.1, 1, 10 wins."""
    rng = np.random.default_rng(3)
    chosen = set()
    for n, noise in [(40, 0.01), (40, 3.0), (200, 0.5), (30, 10.0), (60, 1.0)]:
        x = rng.standard_normal((n, 20))
        y = x @ rng.standard_normal((20, 4)) + noise * rng.standard_normal((n, 4)) + 3.0
        coef, intercept, alpha = ridge_loo_fit(x, y)
        ref = RidgeCV().fit(x, y)
        assert alpha == pytest.approx(ref.alpha_)
        np.testing.assert_allclose(coef, ref.coef_.T, atol=1e-9)
        np.testing.assert_allclose(intercept, ref.intercept_, atol=1e-9)
        chosen.add(alpha)
    assert len(chosen) >= 2


def test_kfold_matches_sklearn():
    for n in (10, 23, 101):
        ours = kfold_unshuffled(n, 10)
        ref = list(KFold(10, shuffle=False).split(np.zeros(n)))
        for (a, b), (c, d) in zip(ours, ref, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("shape", [(50, 400), (400, 50)])
def test_pca_matches_sklearn_reconstruction(shape):
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape) @ np.diag(np.linspace(3, 1, shape[1]))
    scores, components, mean = pca_fit_transform(data, 10)
    ref = PCA(10, svd_solver="full").fit(data)
    np.testing.assert_allclose(np.abs(scores), np.abs(ref.transform(data)), atol=1e-8)
    np.testing.assert_allclose(
        scores @ components + mean, ref.inverse_transform(ref.transform(data)), atol=1e-8
    )


def test_paper_ceiling_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        paper_ceiling(np.zeros((20, 3)), np.zeros((20, 4)))
    with pytest.raises(ValueError, match="folds"):
        paper_ceiling(np.zeros((5, 3)), np.zeros((5, 3)))


def test_methods_differ_but_agree_on_signal():
    """Both methods find the shared signal; they are different estimators."""
    rng = np.random.default_rng(1)
    target, others = _shared_signal(rng, 200, 60, 1.0)
    folds = kfold_unshuffled(200, 5)
    voxelwise = crossval_ceiling(target, others, folds)
    paper = paper_ceiling(target, others, n_components=20)
    assert paper.mean() > 0.5 and voxelwise.mean() > 0.5
    assert not np.allclose(paper, voxelwise)


def test_ceiling_method_travels_the_configuration(tmp_path):
    """Parser -> GroupSettings -> NoiseCeiling node; the default is the paper's."""
    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.config import GroupSettings, RunConfig
    from bids_w2v.workflows.group import init_group_wf

    parser = build_parser()
    base = [str(tmp_path), str(tmp_path / "out"), "group"]
    assert build_config(parser.parse_args(base)).group.noise_ceiling_method == "paper"
    config = build_config(parser.parse_args([*base, "--noise-ceiling-method", "voxelwise"]))
    assert config.group.noise_ceiling_method == "voxelwise"
    wf = init_group_wf(
        ["m"], output_dir=tmp_path / "out", work_dir=tmp_path / "work", task="t",
        space="MNI152NLin2009cAsym", res=None, group=config.group,
        participant=RunConfig(bids_dir=tmp_path, output_dir=tmp_path / "out",
                              analysis_level="participant"),
    )
    assert wf.get_node("noise_ceiling").inputs.noise_ceiling_method == "voxelwise"
    assert GroupSettings().noise_ceiling_method == "paper"


def test_unknown_ceiling_method_is_refused(tmp_path, capsys):
    from bids_w2v.cli.parser import build_parser

    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(
            [str(tmp_path), str(tmp_path / "out"), "group", "--noise-ceiling-method", "x"]
        )
    assert err.value.code != 0
    assert "invalid choice" in capsys.readouterr().err
