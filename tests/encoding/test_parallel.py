"""Voxel units fitted on several threads: same results for every thread count, checked inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from bids_w2v.encoding import cross_validated_scores, parallel
from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.parallel import resolve_threads, unit_pool, units


def _data(n: int = 160, p: int = 40, v: int = 700, seed: int = 3):
    """Planted readout at SNRs over 4 decades, with NaN and constant voxels scattered (so the
    fitted voxels are not contiguous and the units are gathers)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
    W = rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.2)
    signal = X @ W
    signal /= signal.std(0) + 1e-12
    Y = signal * np.sqrt(np.logspace(-3, 1, v)) + rng.standard_normal((n, v))
    Y[5, 17] = np.nan
    Y[:, 400] = 2.0
    return X, Y.astype(np.float32)


@pytest.fixture
def small_units(monkeypatch):
    """Units of 64 voxels, so a few hundred voxels make several units per chunk."""
    monkeypatch.setattr(parallel, "UNIT", 64)


@pytest.mark.parametrize(
    ("backend", "inner"), [("numpy", "loo"), ("numpy", "kfold"), ("torch", "loo")]
)
def test_results_do_not_depend_on_threads(small_units, backend, inner):
    X, Y = _data()
    runs = {
        n: cross_validated_scores(
            X,
            Y,
            inner=inner,
            backend=backend,
            n_threads=n,
            voxel_chunk=300,
            return_predictions=True,
        )
        for n in (1, 2, 3)
    }
    one = runs[1]
    assert np.isnan(one.scores[17]) and np.isnan(one.scores[400])
    assert np.nanmax(one.scores) > 0.5  # the planted voxels are found
    for n in (2, 3):
        np.testing.assert_array_equal(runs[n].alphas, one.alphas)
        np.testing.assert_array_equal(runs[n].fold_scores, one.fold_scores)
        np.testing.assert_array_equal(runs[n].predictions, one.predictions)


def test_exact_equals_full_on_threads(small_units):
    X, Y = _data(n=120, p=150)  # more features than training scans
    exact = cross_validated_scores(X, Y, n_threads=2, alpha_search="exact")
    full = cross_validated_scores(X, Y, n_threads=2, alpha_search="full")
    np.testing.assert_array_equal(exact.alphas, full.alphas)
    np.testing.assert_array_equal(exact.fold_scores, full.fold_scores)


def test_threads_default_to_the_blas_limit():
    with threadpool_limits(limits=1, user_api="blas"):
        assert resolve_threads(None) == 1
    assert resolve_threads(None) >= 1
    assert resolve_threads(3) == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_are_explained(bad):
    X, Y = _data()
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        cross_validated_scores(X, Y[:, :20], n_threads=bad)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_units_cut_cpu_chunks(small_units, backend):
    cuts = units(get_ops(backend, "cpu", "float32"), 150)
    assert [(s.start, s.stop) for s in cuts] == [(0, 64), (64, 128), (128, 150)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_units_keep_gpu_chunks_whole(small_units):
    assert units(get_ops("torch", "cuda", "float32"), 150) == [slice(0, 150)]


def test_pool_makes_blas_and_torch_single_threaded_and_restores_them():
    before, torch_before = resolve_threads(None), torch.get_num_threads()
    with unit_pool(get_ops("numpy", "cpu", "float32"), 2) as pool:
        assert resolve_threads(None) == 1
        assert list(pool.map(lambda s: s.start, [slice(0, 1), slice(1, 2)])) == [0, 1]
        assert pool.submit(pow, 2, 5).result() == 32
    assert resolve_threads(None) == before
    with unit_pool(get_ops("torch", "cpu", "float32"), 2):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == torch_before
