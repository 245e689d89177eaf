"""Participant-level significance (``--participant-stats``): Bartlett's effective degrees of
freedom checked against a direct computation, calibration on AR(1) null data, the circular-shift
null, and the stat-p/q/rthresh maps written from the fit's p-values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from bids_w2v.encoding import cross_validated_scores, make_folds
from bids_w2v.encoding.significance import (
    MAX_LAG_FRACTION,
    bonferroni_folds,
    circular_shift_pvalues,
    fold_pvalues_effective_dof,
    participant_pvalues,
)


def ar1(rng, n, k, phi):
    out = np.empty((n, k))
    out[0] = rng.standard_normal(k)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(k)
    return out


def bartlett_by_hand(p, y):
    """One voxel, one fold: r / sqrt((1/n)(1 + 2 sum rho_p rho_y)) with np.correlate."""
    n = len(p)
    lag = max(1, int(MAX_LAG_FRACTION * n))

    def acf(a):
        a = a - a.mean()
        full = np.correlate(a, a, mode="full")[n - 1 :]
        return full[1 : lag + 1] / full[0]

    r = np.corrcoef(p, y)[0, 1]
    var = max(1 + 2 * np.sum(acf(p) * acf(y)), 1 / n) / n
    return stats.norm.sf(r / np.sqrt(var))


def test_fold_pvalues_match_direct_computation():
    rng = np.random.default_rng(0)
    pred, data = ar1(rng, 120, 6, 0.7), ar1(rng, 120, 6, 0.5)
    folds = make_folds(120, n_folds=3)
    ours = fold_pvalues_effective_dof(pred, data, folds)
    for k, (_, test) in enumerate(folds):
        for v in range(6):
            assert ours[k, v] == pytest.approx(bartlett_by_hand(pred[test, v], data[test, v]))
    combined = participant_pvalues(pred, data, folds, voxel_chunk=4)
    np.testing.assert_allclose(combined, np.minimum(1, 3 * ours.min(0)))
    assert bonferroni_folds(np.array([[0.01, 0.5], [0.2, 0.6]])).tolist() == [0.02, 1.0]


def test_null_rate_at_nominal_level_on_ar1_data():
    """Independent AR(1) prediction and BOLD: p < 0.05 for at most ~5 % of voxels."""
    rng = np.random.default_rng(1)
    folds = make_folds(500, n_folds=5)
    pred, data = ar1(rng, 500, 3000, 0.9), ar1(rng, 500, 3000, 0.8)
    p = participant_pvalues(pred, data, folds)
    assert np.mean(p < 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 3000)
    naive = stats.pearsonr(pred[:100], data[:100]).pvalue / 2
    assert np.mean(naive < 0.05) > 0.1  # the autocorrelation-blind test is far too liberal


def test_strong_signal_is_found_and_nan_kept():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 10))
    y = x @ rng.standard_normal((10, 40)) + 0.5 * rng.standard_normal((300, 40))
    y[:, 20:] = rng.standard_normal((300, 20))
    y[:, 39] = 1.0  # constant: excluded by the fit
    res = cross_validated_scores(x, y, n_folds=5, return_predictions=True, centred_predictions=True)
    p = participant_pvalues(res.predictions, y, res.folds)
    assert (p[:20] < 1e-6).all() and np.isnan(p[39])
    assert np.mean(p[20:39] < 0.05) <= 0.2


def test_centred_predictions_give_the_brain_score():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 5))
    y = x @ rng.standard_normal((5, 8)) + rng.standard_normal((200, 8)) + 100.0
    res = cross_validated_scores(x, y, n_folds=4, return_predictions=True, centred_predictions=True)
    for k, (_, test) in enumerate(res.folds):
        assert np.all(np.abs(res.predictions[test].mean(0)) < 10)  # no intercept of 100
        r = [np.corrcoef(res.predictions[test, v], y[test, v])[0, 1] for v in range(8)]
        np.testing.assert_allclose(r, res.fold_scores[k], atol=1e-4)


def test_circular_shift_null():
    rng = np.random.default_rng(4)
    folds = make_folds(200, n_folds=4)
    pred, data = ar1(rng, 200, 50, 0.5), ar1(rng, 200, 50, 0.5)
    data[:, 0] = pred[:, 0]  # perfectly predicted
    score, p = circular_shift_pvalues(pred, data, folds, n_shifts=200, seed=0)
    expected = np.mean(
        [[np.corrcoef(pred[t, v], data[t, v])[0, 1] for v in range(50)] for _, t in folds], axis=0
    )
    np.testing.assert_allclose(score, expected, atol=1e-10)
    assert p[0] == pytest.approx(1 / 201) and ((p >= 1 / 201) & (p <= 1)).all()
    with pytest.raises(ValueError, match="too short"):
        circular_shift_pvalues(pred[:2], data[:2], [(None, np.arange(1))])


def test_participant_maps_with_significance(tmp_path):
    import nibabel as nb

    from bids_w2v.outputs.maps import write_participant_maps
    from bids_w2v.spaces import VolumeSpace

    mask = np.zeros((3, 3, 2), dtype=bool)
    mask[:2] = True
    space = VolumeSpace(nb.Nifti1Image(mask.astype(np.uint8), np.eye(4)))
    n = int(mask.sum())
    p = np.linspace(0.0001, 0.9, n)
    p[1:4] = 1e-5
    p[0] = np.nan
    results = [
        {
            "scores": np.linspace(0.3, -0.1, n),
            "fold_scores": np.zeros((2, n)),
            "alphas": np.ones((2, n)),
            "excluded": np.zeros(n, bool),
            "pvalues": p,
        }
    ]
    files = write_participant_maps(
        results,
        ["conv0"],
        [0],
        space,
        output_dir=tmp_path,
        subject="01",
        task="t",
        space="MNI152NLin2009cAsym",
        res=None,
        model_label="m",
        metadata={"ModelLabel": "m"},
    )
    names = sorted(f.name for f in files)
    assert any("_stat-p_" in f for f in names) and any("_stat-q_" in f for f in names)
    thresh = [f for f in files if "_stat-rthresh_" in f.name][0]
    meta = json.loads(thresh.with_name(thresh.name.replace(".nii.gz", ".json")).read_text())
    q = stats.false_discovery_control(p[1:], method="bh")
    assert meta["SignificantVoxels"] == int(np.sum(q < 0.05)) > 0
    assert "effective degrees of freedom" in meta["Test"] and meta["FDRLevel"] == 0.05
    values = nb.load(thresh).get_fdata()[mask]
    assert np.isfinite(values).sum() == meta["SignificantVoxels"]


def test_participant_stats_travel_the_configuration(tmp_path):
    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser
    from bids_w2v.config import node_inputs
    from bids_w2v.interfaces.encoding import FitEncoding

    base = [str(tmp_path), str(tmp_path / "out"), "participant"]
    on = build_config(build_parser().parse_args(base))
    off = build_config(build_parser().parse_args([*base, "--no-participant-stats"]))
    assert on.encoding.participant_stats and not off.encoding.participant_stats
    kwargs = node_inputs(FitEncoding, off.encoding, num_threads=1)
    assert FitEncoding(**kwargs).inputs.participant_stats is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"voxel_chunk": 7, "gap": 2},
        {"groups": np.repeat(np.arange(4), 45)},
        {"backend": "torch", "inner": "kfold"},
    ],
)
def test_pvalues_of_the_fit_equal_those_of_its_kept_predictions(kwargs):
    """``cross_validated_scores(pvalues=True)`` (fold by fold, predictions not kept) gives the
    p-values of ``participant_pvalues`` on the predictions it returns (the node's old route),
    up to float32 rounding (a column's rounding depends on its position in the arrays)."""
    rng = np.random.default_rng(3)
    x = ar1(rng, 180, 6, 0.6)
    y = (x @ rng.standard_normal((6, 30)) + 2.0 * ar1(rng, 180, 30, 0.7)).astype(np.float32)
    y[:, 4] = 2.0  # constant: excluded (NaN)
    y[:40, 5] = 1.0  # constant on the first test fold
    res = cross_validated_scores(
        x, y, pvalues=True, return_predictions=True, centred_predictions=True, **kwargs
    )
    post = participant_pvalues(res.predictions, y, res.folds)
    np.testing.assert_allclose(res.pvalues, post, rtol=1e-5)
    assert np.isnan(res.pvalues[4]) and np.isfinite(np.delete(res.pvalues, 4)).all()
    assert cross_validated_scores(x, y, **kwargs).pvalues is None


def test_float32_pvalues_agree_with_float64():
    """float32 inputs (the fit's predictions and BOLD) are tested in float32: the p-values stay
    within 1e-4 (relative) of the float64 ones, down to p ~ 1e-12."""
    rng = np.random.default_rng(4)
    data = ar1(rng, 400, 500, 0.8)
    pred = data + ar1(rng, 400, 500, 0.5)
    folds = make_folds(400, n_folds=2)
    p64 = fold_pvalues_effective_dof(pred, data, folds)
    p32 = fold_pvalues_effective_dof(pred.astype(np.float32), data.astype(np.float32), folds)
    assert p64.min() < 1e-10
    np.testing.assert_allclose(p32, p64, rtol=1e-4)
