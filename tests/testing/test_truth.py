"""The simulator's ground truth, built without the analysis's code, agrees with the analysis
where it must (same activations for the same layer name, same random-init weights) and has the
properties the recovery tests rely on (mid-TR sampling recorded in the sidecars, AR(1) noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_w2v.testing.simulator import SimulationSpec, shipped_speech, simulate_dataset
from bids_w2v.testing.tiny_models import TINY_LAYERS
from bids_w2v.testing.truth import (
    ar1_noise,
    hrf_response,
    layer_activations,
    load_truth_model,
    mid_scan_times,
    read_mono_16k,
)


@pytest.mark.slow
def test_truth_layers_are_the_analysis_layers_of_the_same_name(tiny_model):
    """Each layer computed by transformers' hidden states / our own conv hooks matches the
    analysis's extraction of the SAME name best (a layer off by one would fail), 10 s / 5 s."""
    from bids_w2v.features import extract_features, load_model
    from bids_w2v.inputs.audio import load_audio

    path = shipped_speech("barber.wav")
    ours = layer_activations(
        load_truth_model(str(tiny_model), random_init=False, seed=0),
        read_mono_16k(path)[: 16_000 * 16],
        TINY_LAYERS,
    )
    theirs = extract_features(
        load_model(str(tiny_model)), load_audio(path, 16_000)[: 16_000 * 16], layers=TINY_LAYERS
    ).layers
    for name in TINY_LAYERS:
        assert ours[name].shape == np.asarray(theirs[name]).shape, name
        match = {
            other: np.corrcoef(ours[name].ravel(), np.asarray(theirs[other]).ravel())[0, 1]
            for other in TINY_LAYERS
            if np.asarray(theirs[other]).shape == ours[name].shape
        }
        assert match[name] > 0.97, (name, match[name])
        assert max(match, key=match.get) == name, (name, match)


def test_random_init_matches_the_documented_seeding(tiny_model):
    """``--random-init --seed S``: torch.manual_seed(S) then AutoModel.from_config."""
    from bids_w2v.features import load_model, weights_sha256

    ours = load_truth_model(str(tiny_model), random_init=True, seed=3)
    assert (
        weights_sha256(ours) == load_model(str(tiny_model), random_init=True, seed=3).weights_sha256
    )


def test_hrf_response_is_sampled_at_mid_tr():
    """A 1 s sound at t=0: the response sampled at (i + 0.5) TR is the Glover HRF there."""
    from nilearn.glm.first_level import glover_hrf

    times = mid_scan_times(30, 2.0)
    np.testing.assert_allclose(times[:2], [1.0, 3.0])
    response = hrf_response([np.ones(50)], [0.0], 50.0, times)
    dt = 0.02
    kernel = glover_hrf(dt, oversampling=1, time_length=32.0)
    boxcar = np.zeros(int(times[-1] / dt) + 1)
    boxcar[:50] = 1.0
    expected = np.convolve(boxcar, kernel)[np.round(times / dt).astype(int)]
    assert np.corrcoef(response, expected)[0, 1] > 0.999


def test_ar1_noise_has_the_requested_autocorrelation():
    noise = ar1_noise(20_000, 3, 0.4, np.random.default_rng(0))
    lag1 = [np.corrcoef(noise[1:, v], noise[:-1, v])[0, 1] for v in range(3)]
    np.testing.assert_allclose(lag1, 0.4, atol=0.03)
    np.testing.assert_allclose(noise.std(0), 1.0, atol=0.05)


@pytest.mark.slow
def test_simulated_sidecars_say_slice_timing_corrected_to_mid_tr(tiny_model, tmp_path):
    spec = SimulationSpec(model=str(tiny_model), random_init=False, subjects=("01",),
                          shape=(3, 3, 2), planted=(("conv1", 2), ("transformer1", 2)),
                          clip_seconds=4.0, n_runs=2, tr=2.0)  # fmt: skip
    truth = simulate_dataset(tmp_path, spec)
    assert sorted(truth.layer) == ["conv1", "conv1", "transformer1", "transformer1"]
    sidecars = sorted(tmp_path.glob("derivatives/fmriprep/sub-01/func/*_desc-preproc_bold.json"))
    assert len(sidecars) == 2
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["SliceTimingCorrected"] is True and meta["StartTime"] == 1.0
        assert meta["RepetitionTime"] == 2.0
