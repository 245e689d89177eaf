"""Cross-validated ridge encoding model with one alpha per voxel ("brain score").

Reproduces the encoding analysis of Millet, Caucheteux et al. (NeurIPS 2022): for each outer
fold, features are standardised on the training fold, a ridge regression with an intercept is
fitted with one regularisation strength per voxel chosen on the training fold (efficient
leave-one-out as ``sklearn.linear_model.RidgeCV(alpha_per_target=True)``, or K-fold as
``himalaya.ridge.RidgeCV``), and the held-out predictions are scored with Pearson r. The brain
score of a voxel is the mean r over outer folds.

One float64 SVD of the training features per outer fold serves every alpha, every voxel chunk
and the refit; the voxel-sized products run in ``dtype`` on numpy or torch (CPU or CUDA). The
default ``alpha_search="exact"`` evaluates the inner criterion only for the alphas that bounds
cannot rule out, and returns the full grid's choice by construction
(:mod:`bids_w2v.encoding.prune`; timings in ``benchmarks/README.md``).
Choices of alpha match scikit-learn (LOO) and himalaya (K-fold) run in float64, also when
``dtype="float32"`` (see :class:`bids_w2v.encoding.inner.LooSelector` for how the tiny
differences between large alphas are kept accurate), up to the rare near ties that float32
rounding decides (counted in ``benchmarks/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .backends import get_ops
from .basis import shrink_factors, svd_basis
from .folds import Fold, make_folds
from .inner import LooSelector
from .kfold import KFoldSelector
from .outer import OuterFold, runs
from .parallel import resolve_threads, unit_pool, units
from .pca import check_n_components, pca_project
from .significance import block_pvalues, bonferroni_folds

__all__ = ["DEFAULT_ALPHAS", "EncodingResult", "cross_validated_scores"]

#: The paper's grid: 20 log-spaced values from 1e1 to 1e8.
DEFAULT_ALPHAS: np.ndarray = np.logspace(1, 8, 20)

_INNER = ("loo", "kfold")
_SEARCH = ("exact", "full")
#: Retired searches, still accepted as names of the exact search.
DEPRECATED_SEARCH = ("auto", "local")


def resolve_alpha_search(alpha_search: str, inner: str) -> str:
    """Map the retired ``"auto"`` and ``"local"`` to ``"exact"`` (which is exact and faster).

    ``inner`` is accepted for compatibility; the result no longer depends on it.
    """
    if alpha_search in DEPRECATED_SEARCH:
        return "exact"
    return alpha_search


@dataclass
class EncodingResult:
    """Output of :func:`cross_validated_scores`.

    Attributes
    ----------
    scores : ndarray of shape (n_voxels,)
        Brain score: mean over outer folds of the Pearson r between held-out predictions and
        data. NaN for excluded voxels.
    fold_scores : ndarray of shape (n_folds, n_voxels)
        Pearson r per outer fold (0 where the prediction or the data is constant on the test
        fold; NaN for excluded voxels).
    alphas : ndarray of shape (n_folds, n_voxels)
        Regularisation chosen per fold and voxel (NaN for excluded voxels).
    excluded : ndarray of shape (n_voxels,), bool
        Voxels with any non-finite value or zero variance over all samples; not fitted.
    predictions : ndarray of shape (n_samples, n_voxels) or None
        Held-out predictions (each sample predicted by the fold that tests it; NaN for
        excluded voxels and for samples in no test fold), when requested.
    folds : list of (ndarray, ndarray)
        The outer ``(train_idx, test_idx)`` pairs used.
    n_excluded_nonfinite : int
        Excluded voxels with a NaN or infinite value.
    n_excluded_constant : int
        Excluded voxels that are finite but constant over all samples.
    pvalues : ndarray of shape (n_voxels,) or None
        One-sided p-value of each voxel's brain score (NaN for excluded voxels), when
        requested: :func:`bids_w2v.encoding.significance.participant_pvalues` of the held-out
        predictions, computed fold by fold.
    """

    scores: np.ndarray
    fold_scores: np.ndarray
    alphas: np.ndarray
    excluded: np.ndarray
    predictions: np.ndarray | None = None
    folds: list[Fold] = field(default_factory=list)
    n_excluded_nonfinite: int = 0
    n_excluded_constant: int = 0
    pvalues: np.ndarray | None = None


def _check_arrays(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_samples, n_voxels), got shape {Y.shape}.")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of samples, got {X.shape[0]} and {Y.shape[0]}."
        )
    if X.shape[1] < 1 or Y.shape[1] < 1:
        raise ValueError(f"X and Y need at least one column, got {X.shape} and {Y.shape}.")
    if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(Y.dtype, np.number)):
        raise ValueError("X and Y must be numeric arrays.")
    X = np.asarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values; clean the features first.")
    return X, Y


def _check_alphas(alphas: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if alphas is None:
        return DEFAULT_ALPHAS.copy()
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence, got shape {alphas.shape}.")
    if not (np.isfinite(alphas).all() and (alphas > 0).all()):
        raise ValueError(f"alphas must be finite and > 0, got {alphas}.")
    return alphas


def _voxel_status(Y: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the voxels with a non-finite value, and of the finite but constant ones."""
    nonfinite = np.empty(Y.shape[1], dtype=bool)
    constant = np.empty(Y.shape[1], dtype=bool)
    for start in range(0, Y.shape[1], chunk):
        y = Y[:, start : start + chunk]
        finite = np.isfinite(y).all(0)
        with np.errstate(invalid="ignore"):
            nonfinite[start : start + chunk] = ~finite
            constant[start : start + chunk] = finite & ~(y.max(0) > y.min(0))
    return nonfinite, constant


def _standardise(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score with training mean/std (ddof=0); constant training columns become 0."""
    mean = Xtr.mean(0)
    std = Xtr.std(0)
    const = Xtr.max(0) == Xtr.min(0)
    std[const | (std == 0)] = 1.0
    Xtr = (Xtr - mean) / std
    Xte = (Xte - mean) / std
    Xtr[:, const] = 0.0
    return Xtr, Xte


def _test_pvalues(ops, pool, pred: np.ndarray, data: np.ndarray) -> np.ndarray:
    """:func:`~bids_w2v.encoding.significance.block_pvalues` of a chunk's test block, by units
    of voxels on ``pool``."""
    out = np.empty(pred.shape[1])

    def unit(part: slice) -> None:
        out[part] = block_pvalues(pred[:, part], data[:, part])

    list(pool.map(unit, units(ops, pred.shape[1])))
    return out


def cross_validated_scores(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    alphas: Sequence[float] | np.ndarray | None = None,
    n_folds: int = 5,
    groups: Sequence | np.ndarray | None = None,
    gap: int = 0,
    inner: str = "loo",
    inner_folds: int = 5,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str = "float32",
    voxel_chunk: int = 20000,
    return_predictions: bool = False,
    centred_predictions: bool = False,
    features_pca: int | None = None,
    alpha_search: str = "exact",
    progress: Callable[[int, int], None] | None = None,
    n_threads: int | None = None,
    pvalues: bool = False,
) -> EncodingResult:
    """Cross-validated ridge brain scores with one alpha per voxel.

    For each outer fold: standardise ``X`` with the training mean/std, centre ``Y`` with the
    training mean (intercept), pick each voxel's alpha on the training data, refit on the
    whole training fold and correlate (Pearson r) the predictions of the test fold with the
    data. The brain score is the mean r over folds.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features (e.g. model activations convolved with an HRF). Must be finite.
    Y : ndarray of shape (n_samples, n_voxels)
        Brain data. Voxels with a NaN/Inf or zero variance are excluded (NaN results).
    alphas : array-like of shape (n_alphas,), optional
        Ridge penalties to choose from (default :data:`DEFAULT_ALPHAS`, ``logspace(1, 8, 20)``).
    n_folds : int, default=5
        Number of contiguous, unshuffled outer folds (ignored when ``groups`` is given).
    groups : array-like of shape (n_samples,), optional
        Run label per sample; outer folds are then leave-one-group-out.
    gap : int, default=0
        Training samples within ``gap`` samples of the test set are dropped.
    inner : {"loo", "kfold"}, default="loo"
        Alpha selection: efficient leave-one-out (as scikit-learn's ``RidgeCV``) or contiguous
        K-fold (as himalaya's ``RidgeCV``).
    inner_folds : int, default=5
        Number of inner folds when ``inner="kfold"``.
    backend : {"numpy", "torch"}, default="numpy"
        Array library for the computation.
    device : str, default="cpu"
        Torch device (``"cpu"``, ``"cuda"``...); must be ``"cpu"`` for numpy.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the voxel-sized products (the SVD and leverages are always float64).
    voxel_chunk : int, default=20000
        Number of voxels processed at once (bounds peak memory).
    return_predictions : bool, default=False
        Also return the held-out predictions.
    centred_predictions : bool, default=False
        Return the predictions without the training mean (the intercept) of their fold: the
        small variations of heavily regularised voxels then survive float32 (what the Pearson
        r, and :mod:`bids_w2v.encoding.significance`, use).
    features_pca : int, optional
        Replace the standardised features by their first ``features_pca`` principal
        components, fitted on each training fold alone and applied to its test fold (as
        ``Pipeline(StandardScaler(), PCA(features_pca), RidgeCV(...))``; see
        :mod:`bids_w2v.encoding.pca`). ``None`` (default): no PCA.
    alpha_search : {"exact", "full"}, default="exact"
        ``"full"`` evaluates the inner criterion at every alpha (the grid argmin, as
        scikit-learn and himalaya; the reference). ``"exact"`` returns the same alpha for
        every fold and voxel, by construction: cheap bounds on every alpha's criterion
        (including the rounding of the full grid's arithmetic) rule out the alphas that cannot
        be the first minimiser, and the others are evaluated with the full grid's arithmetic
        (:mod:`bids_w2v.encoding.prune`). The retired ``"local"`` and ``"auto"`` are accepted
        as names of ``"exact"``. For ``inner="kfold"`` both evaluate every alpha for now.
    progress : callable, optional
        Called as ``progress(done, total)`` after each (outer fold, voxel chunk) step.
    n_threads : int, optional
        CPU threads: units of voxels are fitted side by side, each with single-threaded BLAS
        (numpy) or torch (:mod:`bids_w2v.encoding.parallel`; the results do not depend on it).
        Default: the number of threads BLAS may use (``threadpoolctl``'s limit, else all).
        Ignored on GPUs.
    pvalues : bool, default=False
        Also return each voxel's p-value (``--participant-stats``: each fold's r tested with
        Bartlett's effective degrees of freedom, Bonferroni over folds;
        :mod:`bids_w2v.encoding.significance`), computed from each chunk's held-out
        predictions as the fit goes, so that they need not be kept.

    Returns
    -------
    EncodingResult
        Scores, per-fold scores, chosen alphas, excluded mask and optional predictions.

    Raises
    ------
    ValueError
        For inconsistent shapes, non-finite ``X``, bad alphas, too few samples (fewer than
        ``2 * n_folds``, or training folds too small for the inner selection), unknown
        ``inner``/``backend``/``dtype``/``device``, or more ``features_pca`` components than
        features or training samples.

    Notes
    -----
    A fold where the prediction or the data of a voxel is constant gets r = 0. Voxels
    constant on a training fold are predicted by their training mean (hence r = 0).
    """
    X, Y = _check_arrays(X, Y)
    alphas_np = _check_alphas(alphas)
    if inner not in _INNER:
        raise ValueError(f"inner must be one of {_INNER}, got {inner!r}.")
    alpha_search = resolve_alpha_search(alpha_search, inner)
    if alpha_search not in _SEARCH:
        raise ValueError(f"alpha_search must be one of {_SEARCH}, got {alpha_search!r}.")
    try:
        dtype = np.dtype(dtype).name
    except TypeError as exc:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.") from exc
    ops = get_ops(backend, device, dtype)
    if isinstance(voxel_chunk, bool) or not isinstance(voxel_chunk, (int, np.integer)):
        raise ValueError(f"voxel_chunk must be a positive integer, got {voxel_chunk!r}.")
    if voxel_chunk < 1:
        raise ValueError(f"voxel_chunk must be a positive integer, got {voxel_chunk!r}.")
    n_threads = resolve_threads(n_threads)
    n_samples, n_voxels = Y.shape
    if groups is None:
        if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
            raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}.")
        if n_samples < 2 * n_folds:
            raise ValueError(f"Need at least 2 * n_folds = {2 * n_folds} samples, got {n_samples}.")
    folds = make_folds(n_samples, n_folds=n_folds, groups=groups, gap=gap)
    min_train = 3
    if inner == "kfold":
        if isinstance(inner_folds, bool) or not isinstance(inner_folds, (int, np.integer)):
            raise ValueError(f"inner_folds must be an integer >= 2, got {inner_folds!r}.")
        if inner_folds < 2:
            raise ValueError(f"inner_folds must be an integer >= 2, got {inner_folds!r}.")
        min_train = max(min_train, 2 * inner_folds)
    for k, (train, test) in enumerate(folds):
        if train.size < min_train or test.size < 1:
            raise ValueError(
                f"Outer fold {k} has {train.size} training and {test.size} test samples; need "
                f">= {min_train} training samples (reduce gap, n_folds or inner_folds)."
            )

    n_pca = check_n_components(features_pca, min(tr.size for tr, _ in folds), X.shape[1])

    nonfinite, constant = _voxel_status(Y, voxel_chunk)
    valid = ~(nonfinite | constant)
    cols = np.flatnonzero(valid)
    n_f = len(folds)
    fold_scores = np.full((n_f, n_voxels), np.nan)
    chosen = np.full((n_f, n_voxels), np.nan)
    predictions = None
    if return_predictions:
        predictions = np.full((n_samples, n_voxels), np.nan, dtype=dtype)
    alphas_b = ops.asarray(alphas_np, high=True)
    fold_p = np.full((n_f, n_voxels), np.nan) if pvalues else None

    def setup(k: int) -> OuterFold:
        """Standardised features, SVD basis and inner selector of outer fold ``k``."""
        train, test = folds[k]
        Xtr_np, Xte_np = _standardise(X[train], X[test])
        Xtr, Xte = ops.asarray(Xtr_np, high=True), ops.asarray(Xte_np, high=True)
        if n_pca is not None:
            Xtr, Xte = pca_project(ops, Xtr, Xte, n_pca)
        basis = svd_basis(ops, Xtr)
        if inner == "loo":
            selector = LooSelector(ops, basis, alphas_b)
        else:
            selector = KFoldSelector(ops, Xtr, alphas_b, inner_folds)
        return OuterFold(
            ops,
            selector,
            selector.U if inner == "loo" else ops.to_work(basis.U),  # (one conversion)
            ops.to_work(Xte @ basis.Vt.T),
            ops.to_work(shrink_factors(ops, basis.s, alphas_b)),
            ops.index(train),
            ops.index(test),
            alpha_search,
            runs(train),
        )

    with unit_pool(ops, n_threads) as pool:
        # the next fold's setup (a single-threaded eigendecomposition) is queued before this
        # fold's units, so that one thread prepares it while the others fit
        pending = pool.submit(setup, 0)
        for k, (_, test) in enumerate(folds):
            fold = pending.result()
            if k + 1 < n_f:
                pending = pool.submit(setup, k + 1)
            for start in range(0, cols.size, voxel_chunk):
                sel = cols[start : start + voxel_chunk]
                # a slice (a view) when the voxels are contiguous: no gather of the whole chunk
                contiguous = sel.size and sel[-1] - sel[0] + 1 == sel.size
                Ysel = Y[:, sel[0] : sel[-1] + 1] if contiguous else Y[:, sel]
                Ych = ops.asarray(Ysel)
                r, best_np, pred, mean = fold.fit(Ych, pool)
                fold_scores[k, sel] = ops.to_numpy(r)
                chosen[k, sel] = alphas_np[best_np]
                if predictions is not None:
                    predictions[np.ix_(test, sel)] = ops.to_numpy(
                        pred if centred_predictions else pred + mean
                    )
                if fold_p is not None:  # (from the centred predictions: r is shift invariant)
                    fold_p[k, sel] = _test_pvalues(ops, pool, ops.to_numpy(pred), Ysel[test])
                del Ych, Ysel
                if progress is not None:
                    n_chunks = -(-cols.size // voxel_chunk)
                    progress(k * n_chunks + start // voxel_chunk + 1, n_f * n_chunks)

    scores = fold_scores.mean(0) if n_voxels else np.zeros(0)
    return EncodingResult(
        scores=scores,
        fold_scores=fold_scores,
        alphas=chosen,
        excluded=~valid,
        predictions=predictions,
        folds=folds,
        n_excluded_nonfinite=int(nonfinite.sum()),
        n_excluded_constant=int(constant.sum()),
        pvalues=None if fold_p is None else bonferroni_folds(fold_p),
    )
