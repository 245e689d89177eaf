"""Blocked products and sums (``Z = U^T Y``, the criterion's ``U t`` and ``c^2 @ Q``) in the
working dtype: within the bounds the exact alpha search relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_w2v.encoding.backends import get_ops
from bids_w2v.encoding.basis import (
    EVAL_COLS,
    PROJECT_ROWS,
    SUM_ROWS,
    matmul_blocks,
    matmul_depth,
    project,
    project_depth,
    refit_predict,
    sum_depth,
    weighted_sum,
)
from bids_w2v.encoding.prune import gamma, unit_roundoff


def _data(n: int, r: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal float64 ``U`` and float32 columns that make the sums cancel: a constant
    offset (``U`` is nearly orthogonal to it), a sign-alternating column, columns at 1e30
    and 1e-30 and one aligned with ``|U_0|`` (the Cauchy-Schwarz step is then tight)."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n, r)) - 0.5)[0]
    Y = rng.standard_normal((n, v)) * np.logspace(-3, 3, v)
    Y[:, 0] += 1e4
    Y[:, 1] = np.where(np.arange(n) % 2, 1.0, -1.0) * 3e3 + rng.standard_normal(n)
    Y[:, 2] *= 1e30
    Y[:, 3] *= 1e-30
    Y[:, 4] = np.abs(U[:, 0]) * 1e3
    return U, Y.astype(np.float32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [7, PROJECT_ROWS, 1037])
def test_projection_is_within_its_bound(dtype: str, n: int) -> None:
    """Every entry of ``project``'s ``Z`` is within ``gamma_{project_depth + 3} ||U_k|| ||y||`` of
    ``U^T y`` (the reference in float64, its own rounding bound added), and Z is rounded in
    float32."""
    ops = get_ops("numpy", "cpu", dtype)
    U, Y = _data(n, min(n, 40), 24)
    Yw = ops.asarray(Y.astype(dtype))
    Z = np.asarray(project(ops, U, Yw), dtype=np.float64)
    assert Z.dtype == np.float64 and Z.shape == (U.shape[1], Y.shape[1])
    # reference: float64 products of the float64 inputs, with the float64 roundings (~1e-16
    # relative to |U|^T |y|) negligible against a float32 bound and checked for float64 below
    y = np.asarray(Yw, dtype=np.float64)
    ref = U.T @ y
    ref_err = 4 * n * 2.0**-53 * (np.abs(U).T @ np.abs(y))
    f = gamma(project_depth(n) + 3, unit_roundoff(ops))
    bound = f * np.linalg.norm(U, axis=0)[:, None] * np.linalg.norm(y, axis=0)
    assert (np.abs(Z - ref) <= bound + ref_err).all()
    if dtype == "float32":
        assert np.abs(Z - ref).max() > 0  # rounded: the check above is not of exact values


def test_projection_accepts_the_working_basis_and_torch() -> None:
    """A basis already in the working dtype gives the same ``Z``; torch gives it within the
    same bound."""
    U, Y = _data(300, 30, 12, seed=1)
    ops = get_ops("numpy", "cpu", "float32")
    Z = project(ops, U, Y)
    np.testing.assert_array_equal(project(ops, U.astype(np.float32), Y), Z)
    tops = get_ops("torch", "cpu", "float32")
    Zt = project(tops, torch.from_numpy(U), torch.from_numpy(Y)).numpy()
    f = gamma(project_depth(300) + 3, unit_roundoff(tops))
    bound = f * np.linalg.norm(Y.astype(np.float64), axis=0)
    assert (np.abs(Zt.astype(np.float64) - U.T @ Y.astype(np.float64)) <= 1.01 * bound).all()


@pytest.mark.parametrize("r", [5, EVAL_COLS, 700])
def test_blocked_products_and_sums_are_within_their_depths(r: int) -> None:
    """``matmul_blocks`` and ``weighted_sum`` (the full grid's criterion: ``P = U t`` by blocks of
    columns, ``c^2 @ Q`` by blocks of rows) are within ``gamma_depth`` of the exact values, the
    bounds the exact search assumes (``prune.loo_bounds``: ``dP``, ``err``)."""
    ops = get_ops("numpy", "cpu", "float32")
    rng = np.random.default_rng(r)
    n = 450
    U = rng.standard_normal((n, r)).astype(np.float32)
    T = (rng.standard_normal((r, 9)) * np.logspace(-20, 20, 9)).astype(np.float32)
    T[:, 0] = 1e4 + rng.standard_normal(r)  # sums that cancel (U has mixed signs)
    P, tmp = np.empty((n, 9), np.float32), np.empty((n, 9), np.float32)
    assert matmul_blocks(ops, U, T, P, tmp) is P
    U64, T64 = U.astype(np.float64), T.astype(np.float64)
    exact = U64 @ T64  # float64 sums of exact products: error << the float32 bound
    bound = 2 * matmul_depth(r) * 2.0**-24 * (np.abs(U64) @ np.abs(T64))
    assert (np.abs(P - exact) <= bound).all() and np.abs(P - exact).max() > 0
    w = rng.random(n).astype(np.float32)
    got = weighted_sum(ops, w, P)
    assert got.dtype == np.float64 and got.shape == (9,)
    ref = w.astype(np.float64) @ P.astype(np.float64)
    bound = 2 * sum_depth(n) * 2.0**-24 * (np.abs(w.astype(np.float64)) @ np.abs(P))
    assert (np.abs(got - ref) <= bound).all()
    # the depths of blocked and unblocked forms
    assert matmul_depth(768) == EVAL_COLS + 3 and matmul_depth(5) == 6
    assert sum_depth(1600) == SUM_ROWS + 8 and sum_depth(450) == SUM_ROWS + 3


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_refit_predicts_each_voxel_with_its_own_alpha(backend: str) -> None:
    """Column ``j`` of the refit is ``A diag(F[best_j]) z_j``: the same float32 products as the
    per-voxel formula (gathered factors, one GEMM), on a non-contiguous ``Z`` as the fit
    passes it; ``F`` and ``Z`` are left unchanged."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((9, 6)).astype(np.float32)
    F = rng.random((4, 6)).astype(np.float32)
    Zfull = rng.standard_normal((6, 20)).astype(np.float32)
    best = rng.integers(0, 4, 10)
    Z, F0, Z0 = Zfull[:, ::2], F.copy(), Zfull.copy()
    ops = get_ops(backend, "cpu", "float32")
    conv = (lambda a: a) if backend == "numpy" else torch.from_numpy
    got = refit_predict(ops, conv(A), conv(F), ops.index(best), conv(Zfull)[:, ::2])
    got = np.asarray(got)
    for j in range(10):
        expect = A.astype(np.float64) @ (F[best[j]].astype(np.float64) * Z[:, j])
        np.testing.assert_allclose(got[:, j], expect, rtol=1e-4, atol=1e-5)
    if backend == "numpy":  # the same rounding as the earlier formula (OpenBLAS)
        np.testing.assert_array_equal(got, A @ (F[best].T * Z))
    np.testing.assert_array_equal(F, F0)
    np.testing.assert_array_equal(Zfull, Z0)
