"""The vectorised HRF convolution equals nilearn's compute_regressor, feature by feature."""

import numpy as np
import pytest
from nilearn.glm.first_level import compute_regressor

from bids_w2v.features.hrf import convolve_features, scan_times


@pytest.mark.parametrize("hrf_model", ["glover", "spm"])
@pytest.mark.parametrize("tr", [1.0, 1.5, 2.0])
def test_matches_nilearn_compute_regressor(hrf_model, tr):
    rng = np.random.default_rng(0)
    frame_rate = 49.95
    feats = [rng.standard_normal((700, 5)), rng.standard_normal((300, 5))]
    onsets = [3.3, 20.0]
    frame_times = scan_times(40, tr)
    ours = convolve_features(feats, onsets, frame_rate, frame_times, hrf_model=hrf_model, chunk=2)
    for k in range(5):
        on = np.concatenate(
            [o + np.arange(f.shape[0]) / frame_rate for f, o in zip(feats, onsets, strict=True)]
        )
        amp = np.concatenate([f[:, k] for f in feats])
        ref, _ = compute_regressor(
            (on, np.full(on.size, 1 / frame_rate), amp), hrf_model, frame_times
        )
        np.testing.assert_allclose(ours[:, k], ref[:, 0], rtol=1e-4, atol=1e-5)


def test_stimulus_after_run_end_contributes_nothing():
    frame_times = scan_times(10, 2.0)
    feats = [np.ones((100, 2))]
    out = convolve_features(feats, [100.0], 50.0, frame_times)
    np.testing.assert_allclose(out, 0.0, atol=1e-12)


def test_response_is_delayed_like_an_hrf():
    frame_times = scan_times(30, 1.0)
    out = convolve_features([np.ones((50, 1))], [0.0], 50.0, frame_times)[:, 0]
    assert 3 <= int(np.argmax(out)) <= 7  # Glover peaks ~5 s after a 1 s event


def test_unknown_hrf():
    with pytest.raises(ValueError, match="unknown hrf_model"):
        convolve_features([np.ones((5, 1))], [0.0], 50.0, scan_times(5, 1.0), hrf_model="x")


def _nilearn_reference(feats, onsets, frame_rate, k, **kwargs):
    on = np.concatenate(
        [o + np.arange(f.shape[0]) / frame_rate for f, o in zip(feats, onsets, strict=True)]
    )
    amp = np.concatenate([f[:, k] for f in feats])
    ref, _ = compute_regressor((on, np.full(on.size, 1 / frame_rate), amp), **kwargs)
    return ref


@pytest.mark.parametrize("hrf_model", ["glover + derivative", "spm + derivative"])
def test_derivative_models_match_nilearn(hrf_model):
    rng = np.random.default_rng(1)
    feats, onsets, rate = [rng.standard_normal((400, 3))], [4.1], 20.0
    frame_times = scan_times(30, 1.5)
    ours = convolve_features(
        feats, onsets, rate, frame_times, hrf_model=hrf_model.replace(" ", ""), chunk=2
    )
    assert ours.shape == (30, 6)
    for k in range(3):
        ref = _nilearn_reference(
            feats, onsets, rate, k, hrf_model=hrf_model, frame_times=frame_times
        )
        np.testing.assert_allclose(ours[:, k], ref[:, 0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours[:, 3 + k], ref[:, 1], rtol=1e-4, atol=1e-5)


def test_fir_delays_match_nilearn():
    rng = np.random.default_rng(2)
    feats, onsets = [rng.standard_normal((300, 2)), rng.standard_normal((100, 2))], [1, 25]
    frame_times = scan_times(25, 2.0)
    delays = [0, 1, 2, 4]
    ours = convolve_features(feats, onsets, 10.0, frame_times, hrf_model="fir", fir_delays=delays)
    assert ours.shape == (25, 2 * len(delays))
    for k in range(2):
        ref = _nilearn_reference(
            feats, onsets, 10.0, k,
            hrf_model="fir", fir_delays=delays, frame_times=frame_times,
        )  # fmt: skip
        for d in range(len(delays)):
            np.testing.assert_allclose(ours[:, d * 2 + k], ref[:, d], rtol=1e-4, atol=1e-5)
    # the copies are the same regressor delayed by whole scans
    np.testing.assert_allclose(ours[3:, 2:4], ours[2:-1, 0:2], atol=1e-6)


def test_fir_needs_delays():
    with pytest.raises(ValueError, match="fir_delays"):
        convolve_features([np.ones((5, 1))], [0.0], 50.0, scan_times(5, 1.0), hrf_model="fir")
