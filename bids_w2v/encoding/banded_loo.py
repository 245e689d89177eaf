"""Banded ridge by efficient leave-one-out: himalaya's random search, the single fits' algebra.

:func:`fit_predict_loo` fits one banded ridge on one outer training fold and predicts its test
fold. It searches the same weightings of the feature spaces as himalaya's
``solve_group_ridge_random_search`` (:func:`draws`: the uniform weighting, then Dirichlet draws
of ``himalaya.kernel_ridge.generate_dirichlet_samples`` with the same concentrations and seed)
times the same alpha grid, with himalaya's meaning of the result: for a weighting ``gamma`` and
a penalty ``alpha``, space ``i`` is scaled by ``sqrt(gamma_i)`` and the ridge penalty is
``alpha``, i.e. space ``i`` is scaled by ``exp(delta_i / 2)`` with a unit penalty, where
``delta_i = log(gamma_i / alpha)`` (himalaya's ``deltas_``).

What differs from himalaya's solver is the inner criterion: instead of an inner K-fold (one SVD
and one prediction product per inner fold, alpha and weighting), each weighting costs one SVD
of the scaled training design and the *efficient leave-one-out* error of every alpha, exactly
as the single-space fits (:class:`bids_w2v.encoding.inner.LooSelector`, with an intercept: the
leave-one-out error of a ridge refitted with an intercept on the other scans, i.e. himalaya
with ``cv=LeaveOneOut()`` and scikit-learn's ``RidgeCV``). Per voxel the (weighting, alpha) with
the smallest leave-one-out error wins (the first one on ties, as himalaya: weightings in draw
order, alphas in grid order), and the test fold is predicted with that voxel's choice.

Search (``search``):

* ``"full"`` evaluates every alpha of every weighting for every voxel (the reference);
* ``"exact"`` (default) evaluates only what can still win: the bounds of
  :func:`bids_w2v.encoding.prune.loo_bounds` (which include the rounding of the computed
  criterion) rule out, per voxel, the alphas that cannot be the weighting's minimiser *or*
  cannot beat the best value of the previous weightings. The choice is the full search's,
  except where two computed values tie to the last bits (the blocks of voxels evaluated
  together differ between the two searches, so the last bits of a value can too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .backends import Array, Ops
from .basis import mean0, project, refit_predict, shrink_factors, svd_basis
from .inner import LooSelector, plan_width
from .prune import loo_bounds, plan

__all__ = ["SEARCHES", "draws", "fit_predict_loo"]

#: ``search`` values of :func:`fit_predict_loo`
SEARCHES = ("exact", "full")


def draws(n_iter: int, n_spaces: int, seed: int, concentration: Sequence[float]) -> np.ndarray:
    """Weightings of the spaces searched by himalaya's ``solve_group_ridge_random_search``.

    ``n_iter`` Dirichlet draws of ``himalaya.kernel_ridge.generate_dirichlet_samples`` (cycling
    through ``concentration``, ``random_state=seed``), the first replaced by the uniform
    weighting; with one space, the single weighting 1 (the banded ridge is then a ridge).
    Returns float64, shape ``(n_draws, n_spaces)``.
    """
    if n_spaces == 1:
        return np.ones((1, 1))
    from himalaya.backend import get_backend
    from himalaya.kernel_ridge import generate_dirichlet_samples

    gammas = generate_dirichlet_samples(
        n_samples=n_iter,
        n_kernels=n_spaces,
        concentration=list(concentration),
        random_state=seed,
    )
    gammas = np.array(get_backend().to_numpy(gammas), dtype=np.float64)
    gammas[0] = 1.0 / n_spaces
    return gammas


def _scaled(ops: Ops, Xs: list[Array], gamma: np.ndarray) -> Array:
    """``[sqrt(gamma_1) X_1, sqrt(gamma_2) X_2, ...]`` (float64)."""
    parts = [x * float(np.sqrt(g)) for x, g in zip(Xs, gamma, strict=True)]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, 1)
    return ops.torch.cat(parts, 1)


def fit_predict_loo(
    ops: Ops,
    Xtr: Sequence[np.ndarray],
    Ytr: np.ndarray,
    Xte: Sequence[np.ndarray],
    *,
    alphas: np.ndarray,
    gammas: np.ndarray,
    voxel_chunk: int = 20000,
    search: str = "exact",
) -> tuple[np.ndarray, np.ndarray]:
    """Banded ridge on one training fold, weighting and alpha per voxel by leave-one-out.

    Parameters
    ----------
    ops : Ops
        Array backend and working dtype (:func:`bids_w2v.encoding.backends.get_ops`).
    Xtr, Xte : sequence of ndarray of shape (n_train, p_i) and (n_test, p_i)
        Standardised (hence centred) training features of each space and the test features
        transformed the same way.
    Ytr : ndarray of shape (n_train, n_voxels)
        Training data (an intercept is fitted: each voxel is centred here).
    alphas : ndarray of shape (n_alphas,)
        Penalty grid.
    gammas : ndarray of shape (n_draws, n_spaces)
        Weightings of the spaces (:func:`draws`).
    voxel_chunk : int
        Voxels processed at once.
    search : {"exact", "full"}
        See the module docstring.

    Returns
    -------
    pred : ndarray of shape (n_test, n_voxels), float64
        Test predictions (intercept included).
    deltas : ndarray of shape (n_spaces, n_voxels), float64
        ``log(gamma_i / alpha)`` of the chosen weighting and alpha (himalaya's ``deltas_``).
    """
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}.")
    n_test, n_voxels = Xte[0].shape[0], Ytr.shape[1]
    alphas_b = ops.asarray(alphas, high=True)
    Xtr_b = [ops.asarray(x, high=True) for x in Xtr]
    Xte_b = [ops.asarray(x, high=True) for x in Xte]
    best_val = np.full(n_voxels, np.inf)
    best_draw = np.zeros(n_voxels, dtype=np.int64)
    best_alpha = np.zeros(n_voxels, dtype=np.int64)
    pred = np.zeros((n_test, n_voxels))
    means = np.zeros(n_voxels)
    for d, gamma in enumerate(gammas):
        basis = svd_basis(ops, _scaled(ops, Xtr_b, gamma))
        A = ops.to_work(_scaled(ops, Xte_b, gamma) @ basis.Vt.T)
        F = ops.to_work(shrink_factors(ops, basis.s, alphas_b))
        selector = LooSelector(ops, basis, alphas_b)
        for start in range(0, n_voxels, voxel_chunk):
            sl = slice(start, start + voxel_chunk)
            # a copy in the working dtype (Ytr itself is left alone)
            Yc = ops.asarray(np.array(Ytr[:, sl], dtype=f"float{8 * ops.itemsize}"))
            mean = ops.to_work(mean0(ops, Yc))
            const = ops.ptp0_is_zero(Yc)
            Yc -= mean  # the intercept
            Yc[:, const] = 0.0
            if d == 0:
                means[sl] = ops.to_numpy(ops.to_high(mean))
            Z = project(ops, selector.U, Yc)  # (the basis already in the working dtype)
            _update(
                ops, selector, Yc, Z, (A, F), d, search,
                (best_val[sl], best_draw[sl], best_alpha[sl], pred[:, sl]),
            )  # fmt: skip
            del Yc, Z
    deltas = np.log(gammas[best_draw].T / np.asarray(alphas, dtype=np.float64)[best_alpha][None])
    return pred + means[None], deltas


def _update(ops: Ops, selector, Yc, Z, refit, d: int, search: str, state) -> None:
    """Evaluate one weighting on a chunk of voxels and keep, per voxel, the better choice.

    ``state`` holds views of the chunk's best values, weighting and alpha indices, and test
    predictions (without intercept), updated in place where this weighting is strictly better.
    """
    best_val, best_draw, best_alpha, pred = state
    n, v = Yc.shape
    if not v:
        return
    width = plan_width(ops, n, v)
    lo, hi, split = loo_bounds(selector, Yc, Z, width)
    if search == "exact":
        # a voxel whose every alpha is provably above its best value so far keeps its choice;
        # an alpha above that value cannot win either (and cannot be the minimiser that wins)
        act = np.flatnonzero(~(lo.min(0) > best_val))
        lo, hi, split = lo[:, act], np.minimum(hi[:, act], best_val[act][None]), split[act]
    else:
        act = np.arange(v)
    full = search != "exact"
    for idx, alphas, cand in plan(lo, hi, split, width, prune=not full):
        cols = act[idx]  # sorted by split, as LooSelector.values needs
        cols_b = ops.index(cols)
        values = selector.values(Yc[:, cols_b], Z[:, cols_b], split[idx], alphas, cand, full)
        a = values.argmin(0)
        val = values[a, np.arange(cols.size)]
        better = val < best_val[cols]
        if not better.any():
            continue
        up = cols[better]
        best_val[up], best_draw[up], best_alpha[up] = val[better], d, a[better]
        A, F = refit
        up_b = ops.index(up)
        p = refit_predict(ops, A, F, ops.index(a[better]), Z[:, up_b])
        pred[:, up] = ops.to_numpy(ops.to_high(p))
