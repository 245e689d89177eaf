"""One outer fold's fit: training rows as runs, centring without a gathered copy."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.encoding import cross_validated_scores, ridge
from bids_w2v.encoding.outer import runs


def test_runs_of_consecutive_rows() -> None:
    assert runs(np.r_[0:400, 800:2000]) == (slice(0, 400), slice(800, 2000))
    assert runs(np.arange(5)) == (slice(0, 5),)
    assert runs(np.r_[0:3, 5:7, 9]) == (slice(0, 3), slice(5, 7), slice(9, 10))
    assert runs(np.r_[3, 1]) == ()  # not increasing: the fit gathers the rows instead
    assert runs(np.zeros(0, dtype=np.int64)) == ()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("gap", [0, 3])
def test_centring_from_runs_matches_the_gathered_rows(monkeypatch, backend: str, gap: int) -> None:
    """The fit centres the training rows slice by slice; gathering them first gives the same fit
    (the means may differ in the last bit: a sum in two parts)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 12))
    Y = (X @ rng.standard_normal((12, 40)) * np.logspace(-2, 1, 40)
         + rng.standard_normal((120, 40)) + 100.0).astype(np.float32)  # fmt: skip
    Y[:96, 3] = 7.0  # constant on the last fold's training rows: exactly 0 once centred
    kw = dict(backend=backend, gap=gap, return_predictions=True)
    res = cross_validated_scores(X, Y, **kw)
    monkeypatch.setattr(ridge, "runs", lambda idx: ())
    ref = cross_validated_scores(X, Y, **kw)
    np.testing.assert_array_equal(res.alphas, ref.alphas)
    np.testing.assert_allclose(res.fold_scores, ref.fold_scores, atol=1e-6)
    np.testing.assert_allclose(res.predictions, ref.predictions, rtol=1e-6, atol=1e-4)
    assert res.fold_scores[-1, 3] == 0
