"""Banded ridge over several feature spaces, and variance partitioning.

A joint encoding model of several feature spaces (e.g. a wav2vec2 layer and a log-mel
spectrogram) fitted as a *banded* ridge: one regularisation per feature space and voxel
(Nunez-Elizalde, Huth & Gallant 2019; Dupré la Tour et al. 2022), by the random search of
himalaya's ``GroupRidgeCV`` (alias ``BandedRidgeCV``) over the simplex of feature-space
weights. Two solvers search the same weightings and alphas:

* ``solver="loo"`` (default): each weighting's alphas are scored by efficient leave-one-out
  from one SVD of the training fold, with the single-space fits' algebra
  (:mod:`bids_w2v.encoding.banded_loo`), on numpy, torch or torch on CUDA;
* ``solver="himalaya"``: himalaya's ``GroupRidgeCV`` itself, with inner contiguous K-fold
  (the reference; much slower on CPUs), on himalaya's numpy, torch or torch-CUDA backend.

Around it, this module does what the single-space fits do
(:func:`bids_w2v.encoding.ridge.cross_validated_scores`): the same outer folds
(:func:`bids_w2v.encoding.folds.make_folds`), features standardised on each training fold,
an intercept, voxels with non-finite or constant data excluded. Held-out scores are the
coefficient of determination r² per outer fold, averaged over folds.

Variance partitioning: for every space ``i`` the model *without* space ``i`` is fitted in the
same way (a banded ridge of the other spaces; a ridge with the same alpha grid when one space
is left). Then, per voxel,

* ``unique_i = r²(joint) - r²(without i)``: the variance only space ``i`` explains;
* ``shared = r²(joint) - sum_i unique_i``: the variance explained by the joint model that no
  single space explains alone (for two spaces ``r²(A) + r²(B) - r²(A, B)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .folds import Fold, make_folds

__all__ = ["SOLVERS", "BandedResult", "banded_scores", "himalaya_backend_name", "r2_columns"]

#: Dirichlet concentrations of himalaya's random search (its default)
CONCENTRATION = (0.1, 1.0)

#: ``solver`` values of :func:`banded_scores` (the first is the default)
SOLVERS = ("loo", "himalaya")


@dataclass
class BandedResult:
    """Output of :func:`banded_scores`.

    Attributes
    ----------
    spaces : list of str
        Names of the feature spaces, in order.
    r2 : ndarray of shape (n_voxels,)
        Held-out r² of the joint model (mean over outer folds; NaN for excluded voxels).
    fold_r2 : ndarray of shape (n_folds, n_voxels)
        Held-out r² of the joint model per outer fold.
    r2_without : ndarray of shape (n_spaces, n_voxels)
        Held-out r² of the model without each space (empty with one space).
    unique : ndarray of shape (n_spaces, n_voxels)
        ``r2 - r2_without``: variance explained by each space alone.
    shared : ndarray of shape (n_voxels,)
        ``r2 - unique.sum(0)``.
    deltas : ndarray of shape (n_folds, n_spaces, n_voxels)
        Log feature-space scalings of the joint model chosen per fold and voxel (the
        regularisation of space ``i`` is ``exp(-deltas[i])``).
    excluded : ndarray of shape (n_voxels,), bool
        Voxels with a non-finite value or constant over all samples (not fitted).
    folds : list of (ndarray, ndarray)
        Outer folds.
    """

    spaces: list[str]
    r2: np.ndarray
    fold_r2: np.ndarray
    r2_without: np.ndarray
    unique: np.ndarray
    shared: np.ndarray
    deltas: np.ndarray
    excluded: np.ndarray
    folds: list[Fold] = field(default_factory=list)


def himalaya_backend_name(backend: str, device: str) -> str:
    """himalaya's backend for bids-w2v's ``--backend``/``--device`` pair.

    ``numpy`` -> ``"numpy"``; ``torch`` on ``cpu`` -> ``"torch"``; ``torch`` on ``cuda[:N]``
    -> ``"torch_cuda"`` (himalaya uses the current CUDA device).
    """
    if backend == "numpy":
        if device != "cpu":
            raise ValueError(f"The numpy backend runs on the CPU only, got device {device!r}.")
        return "numpy"
    if backend == "torch":
        if device == "cpu":
            return "torch"
        if device.startswith("cuda"):
            return "torch_cuda"
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}.")
    raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")


@contextmanager
def _himalaya_backend(name: str, device: str):
    from himalaya.backend import get_backend, set_backend

    previous = get_backend().name
    if name == "torch_cuda" and ":" in device:
        import torch

        torch.cuda.set_device(device)
    set_backend(name, on_error="raise")
    try:
        yield
    finally:
        set_backend(previous, on_error="warn")


def r2_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column (0 where the data are constant), float64."""
    y_true = np.asarray(y_true, dtype=np.float64)
    err = ((y_true - np.asarray(y_pred, dtype=np.float64)) ** 2).sum(0)
    var = ((y_true - y_true.mean(0)) ** 2).sum(0)
    out = np.zeros(y_true.shape[1])
    ok = var > 0
    out[ok] = 1.0 - err[ok] / var[ok]
    return out


def _standardise(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score with the training mean and std (ddof=0); constant training columns become 0."""
    mean = Xtr.mean(0)
    std = Xtr.std(0)
    const = ~(std > 0)
    std[const] = 1.0
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    Xtr[:, const] = 0.0
    Xte[:, const] = 0.0
    return Xtr, Xte


def _fit_predict(
    Xtr: list[np.ndarray],
    Ytr: np.ndarray,
    Xte: list[np.ndarray],
    *,
    alphas: np.ndarray,
    n_iter: int,
    seed: int,
    inner_folds: int,
    voxel_chunk: int,
    dtype: str,
) -> tuple[np.ndarray, np.ndarray]:
    """himalaya's banded ridge on one training fold: test predictions and log scalings."""
    from himalaya.backend import get_backend
    from himalaya.ridge import GroupRidgeCV
    from sklearn.model_selection import KFold

    backend = get_backend()
    # one space: the simplex is a point, so one "iteration" is the whole alpha grid
    iters = n_iter if len(Xtr) > 1 else np.ones((1, 1))
    model = GroupRidgeCV(
        groups="input",
        solver_params=dict(
            n_iter=iters,
            concentration=list(CONCENTRATION),
            alphas=alphas,
            n_targets_batch=voxel_chunk,
            n_targets_batch_refit=voxel_chunk,
            progress_bar=False,
            warn=False,
        ),
        fit_intercept=True,
        cv=KFold(inner_folds),
        random_state=seed,
    )
    model.fit([x.astype(dtype) for x in Xtr], Ytr.astype(dtype))
    pred = model.predict([x.astype(dtype) for x in Xte])
    return backend.to_numpy(pred), backend.to_numpy(model.deltas_)


def _fitters(solver: str, subsets: list[list[int]], **kw) -> list:
    """One ``fit(Xtr, Ytr, Xte) -> (pred, deltas)`` per model (subset of the spaces)."""
    if solver == "himalaya":
        keys = ("alphas", "n_iter", "seed", "inner_folds", "voxel_chunk", "dtype")
        fit = partial(_fit_predict, **{key: kw[key] for key in keys})
        return [fit] * len(subsets)
    from .backends import get_ops
    from .banded_loo import SEARCHES, draws, fit_predict_loo

    if kw["search"] not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {kw['search']!r}.")
    ops = get_ops(kw["backend"], kw["device"], kw["dtype"])
    fit = partial(
        fit_predict_loo, ops, alphas=kw["alphas"], voxel_chunk=kw["voxel_chunk"],
        search=kw["search"],
    )  # fmt: skip
    out = []
    for subset in subsets:
        gammas = draws(kw["n_iter"], len(subset), kw["seed"], CONCENTRATION)
        # himalaya scales the spaces in the fit's dtype: the same weightings exactly
        out.append(partial(fit, gammas=gammas.astype(kw["dtype"]).astype(np.float64)))
    return out


def _check_inputs(Xs, Y, names, n_iter, inner_folds):
    if len(Xs) < 1:
        raise ValueError("Need at least one feature space.")
    Xs = [np.asarray(x, dtype=np.float64) for x in Xs]
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_samples, n_voxels), got shape {Y.shape}.")
    for name, x in zip(names, Xs, strict=True):
        if x.ndim != 2 or x.shape[0] != Y.shape[0] or x.shape[1] < 1:
            raise ValueError(
                f"Feature space {name!r} has shape {x.shape}; it needs {Y.shape[0]} rows (one "
                "per scan) and at least one column."
            )
        if not np.isfinite(x).all():
            raise ValueError(f"Feature space {name!r} contains NaN or infinite values.")
    for value, label in ((n_iter, "n_iter"), (inner_folds, "inner_folds")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}.")
    if inner_folds < 2:
        raise ValueError(f"inner_folds must be >= 2, got {inner_folds}.")
    return Xs, Y


def banded_scores(
    Xs: Sequence[np.ndarray],
    Y: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    alphas: Sequence[float] | np.ndarray | None = None,
    n_folds: int = 5,
    groups: Sequence | np.ndarray | None = None,
    gap: int = 0,
    inner_folds: int = 5,
    n_iter: int = 20,
    seed: int = 0,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str = "float32",
    voxel_chunk: int = 20000,
    partition: bool = True,
    solver: str = "loo",
    search: str = "exact",
) -> BandedResult:
    """Cross-validated banded ridge of several feature spaces, with variance partitioning.

    Parameters
    ----------
    Xs : sequence of ndarray of shape (n_samples, n_features_i)
        One design per feature space (finite).
    Y : ndarray of shape (n_samples, n_voxels)
        Brain data; voxels with a NaN/Inf or constant over all samples are excluded.
    names : sequence of str, optional
        Names of the spaces (default ``space0``, ``space1``...).
    alphas : array-like, optional
        Grid of the overall regularisation (default
        :data:`bids_w2v.encoding.ridge.DEFAULT_ALPHAS`).
    n_folds, groups, gap
        Outer folds, as :func:`bids_w2v.encoding.folds.make_folds`.
    inner_folds : int, default=5
        Contiguous inner folds on each training fold (``sklearn.model_selection.KFold``) of
        ``solver="himalaya"``.
    n_iter : int, default=20
        Feature-space weightings of the random search (the first is the uniform weighting,
        the others are Dirichlet draws; himalaya's ``solver_params["n_iter"]``).
    seed : int, default=0
        Seed of the random search (the same draws on every fold and every model).
    backend, device : str
        ``numpy``/``cpu``, ``torch``/``cpu`` or ``torch``/``cuda[:N]``.
    dtype : {"float32", "float64"}
        Dtype of the fit (``solver="loo"``: of the voxel-sized products; its SVDs and
        leverages are float64, as the single fits').
    voxel_chunk : int
        Voxels solved at once.
    partition : bool, default=True
        Also fit the model without each space (variance partitioning); else ``r2_without`` and
        ``unique`` are NaN and ``shared`` too.
    solver : {"loo", "himalaya"}, default="loo"
        Inner criterion: efficient leave-one-out (:mod:`bids_w2v.encoding.banded_loo`) or
        himalaya's ``GroupRidgeCV`` with ``inner_folds`` contiguous folds (the reference).
        Both search the same weightings (``n_iter``, ``seed``) and alphas.
    search : {"exact", "full"}, default="exact"
        ``solver="loo"`` only: skip the (weighting, alpha) pairs that provably cannot win
        (``"exact"``) or evaluate them all (``"full"``,
        :func:`bids_w2v.encoding.banded_loo.fit_predict_loo`).

    Returns
    -------
    BandedResult

    Raises
    ------
    ValueError
        Inconsistent shapes, non-finite features, bad settings, or folds too small.
    """
    from .ridge import DEFAULT_ALPHAS

    names = list(names) if names is not None else [f"space{i}" for i in range(len(Xs))]
    if len(names) != len(Xs) or len(set(names)) != len(names):
        raise ValueError(f"names must be unique, one per feature space, got {names}.")
    Xs, Y = _check_inputs(Xs, Y, names, n_iter, inner_folds)
    alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or not (np.isfinite(alphas) & (alphas > 0)).all():
        raise ValueError(f"alphas must be a non-empty 1-D array of positive values, got {alphas}.")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    hb = himalaya_backend_name(backend, device)
    n_samples, n_voxels = Y.shape
    folds = make_folds(n_samples, n_folds=n_folds, groups=groups, gap=gap)
    min_train = 2 * inner_folds if solver == "himalaya" else 3
    for k, (train, test) in enumerate(folds):
        if train.size < min_train or test.size < 2:
            raise ValueError(
                f"Outer fold {k} has {train.size} training and {test.size} test scans; the "
                f"banded ridge needs >= {min_train} training and 2 test scans."
            )
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(Y).all(0)
        valid = finite & (np.nanmax(Y, 0) > np.nanmin(Y, 0))
    cols = np.flatnonzero(valid)
    n_spaces = len(Xs)
    subsets = [list(range(n_spaces))]
    if partition and n_spaces > 1:
        subsets += [[j for j in range(n_spaces) if j != i] for i in range(n_spaces)]
    fold_r2 = np.full((len(subsets), len(folds), n_voxels), np.nan)
    deltas = np.full((len(folds), n_spaces, n_voxels), np.nan)
    fits = _fitters(
        solver, subsets, alphas=alphas, n_iter=n_iter, seed=seed, inner_folds=inner_folds,
        voxel_chunk=voxel_chunk, dtype=dtype, backend=backend, device=device, search=search,
    )  # fmt: skip
    with _himalaya_backend(hb, device) if solver == "himalaya" else nullcontext():
        for k, (train, test) in enumerate(folds):
            Ztr, Zte = zip(*(_standardise(x[train], x[test]) for x in Xs), strict=True)
            Ytr = np.asarray(Y[np.ix_(train, cols)], dtype=np.float64)
            Yte = np.asarray(Y[np.ix_(test, cols)], dtype=np.float64)
            for s, subset in enumerate(subsets):
                pred, d = fits[s]([Ztr[j] for j in subset], Ytr, [Zte[j] for j in subset])
                fold_r2[s, k, cols] = r2_columns(Yte, pred)
                if s == 0:
                    deltas[k][:, cols] = d
    r2 = fold_r2[0].mean(0)
    if len(subsets) > 1:
        r2_without = fold_r2[1:].mean(1)
        unique = r2[None] - r2_without
        shared = r2 - unique.sum(0)
    elif n_spaces > 1:
        r2_without = unique = np.full((n_spaces, n_voxels), np.nan)
        shared = np.full(n_voxels, np.nan)
    else:
        r2_without = np.zeros((0, n_voxels))
        unique = r2[None].copy()
        shared = np.zeros(n_voxels)
        shared[~valid] = np.nan
    return BandedResult(
        spaces=names,
        r2=r2,
        fold_r2=fold_r2[0],
        r2_without=r2_without,
        unique=unique,
        shared=shared,
        deltas=deltas,
        excluded=~valid,
        folds=folds,
    )
