"""Outer cross-validation folds for the encoding model.

Folds are lists of ``(train_idx, test_idx)`` pairs of sorted integer index arrays.

* :func:`contiguous_folds` gives ``K`` contiguous, unshuffled blocks, identical to
  ``sklearn.model_selection.KFold(K, shuffle=False)``.
* :func:`group_folds` gives leave-one-group-out folds (one fold per run), in the order of the
  sorted unique group labels, identical to ``sklearn.model_selection.LeaveOneGroupOut``.
* :func:`apply_gap` removes from each training set the samples that lie within ``gap`` samples
  (in sample-index distance) of any test sample, so that slow signals (haemodynamic response,
  autocorrelated features) cannot leak across the train/test boundary.
* :func:`make_folds` combines the three.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Fold = tuple[np.ndarray, np.ndarray]

__all__ = ["Fold", "apply_gap", "contiguous_folds", "group_folds", "make_folds"]


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def contiguous_folds(n_samples: int, n_folds: int = 5) -> list[Fold]:
    """Split ``range(n_samples)`` into contiguous, unshuffled folds.

    The first ``n_samples % n_folds`` folds get one extra sample, exactly as
    ``sklearn.model_selection.KFold(n_folds, shuffle=False)``.

    Parameters
    ----------
    n_samples : int
        Number of samples (scans).
    n_folds : int, default=5
        Number of folds, at least 2 and at most ``n_samples``.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(train_idx, test_idx)`` for each fold, in order; the test blocks tile
        ``range(n_samples)``.

    Raises
    ------
    ValueError
        If ``n_folds < 2`` or ``n_samples < n_folds``.
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_folds = _check_int(n_folds, "n_folds", 2)
    if n_samples < n_folds:
        raise ValueError(f"Cannot make {n_folds} folds out of {n_samples} samples.")
    sizes = np.full(n_folds, n_samples // n_folds, dtype=int)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.arange(n_samples)
    folds = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        test = indices[start:stop]
        train = np.concatenate([indices[:start], indices[stop:]])
        folds.append((train, test))
    return folds


def group_folds(groups: Sequence | np.ndarray) -> list[Fold]:
    """Leave-one-group-out folds (e.g. leave-one-run-out).

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group label of each sample (e.g. the run each scan belongs to). Labels need not be
        contiguous.

    Returns
    -------
    list of (ndarray, ndarray)
        One ``(train_idx, test_idx)`` per unique label, in sorted label order (like
        ``sklearn.model_selection.LeaveOneGroupOut``).

    Raises
    ------
    ValueError
        If ``groups`` is not one-dimensional or has fewer than two distinct labels.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {groups.shape}.")
    labels = np.unique(groups)
    if labels.size < 2:
        raise ValueError(
            f"groups must contain at least 2 distinct labels for leave-one-group-out, "
            f"got {labels.size}."
        )
    indices = np.arange(groups.size)
    return [(indices[groups != label], indices[groups == label]) for label in labels]


def apply_gap(folds: Sequence[Fold], gap: int, n_samples: int) -> list[Fold]:
    """Drop training samples within ``gap`` samples of the test set.

    A training sample ``i`` is dropped when some test sample ``t`` has ``|i - t| <= gap``.
    Distances are in sample index, also when the folds come from groups (runs are assumed
    concatenated in acquisition order; dropping the edges of the neighbouring runs is
    conservative).

    Parameters
    ----------
    folds : sequence of (ndarray, ndarray)
        Folds to thin.
    gap : int
        Number of scans to drop on each side of every test block (0 returns the folds
        unchanged).
    n_samples : int
        Total number of samples.

    Returns
    -------
    list of (ndarray, ndarray)
        Folds with the same test sets and thinned training sets.

    Raises
    ------
    ValueError
        If ``gap`` is negative or not an integer.
    """
    gap = _check_int(gap, "gap", 0)
    if gap == 0:
        return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
    out = []
    for train, test in folds:
        is_test = np.zeros(n_samples, dtype=np.int64)
        is_test[test] = 1
        csum = np.concatenate([[0], np.cumsum(is_test)])
        pos = np.arange(n_samples)
        hi = np.minimum(pos + gap, n_samples - 1) + 1
        lo = np.maximum(pos - gap, 0)
        near_test = (csum[hi] - csum[lo]) > 0
        train = np.asarray(train)
        out.append((train[~near_test[train]], np.asarray(test)))
    return out


def make_folds(
    n_samples: int,
    *,
    n_folds: int = 5,
    groups: Sequence | np.ndarray | None = None,
    gap: int = 0,
) -> list[Fold]:
    """Outer folds: contiguous K-fold, or leave-one-group-out, then an optional gap.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_folds : int, default=5
        Number of contiguous folds (ignored when ``groups`` is given).
    groups : array-like of shape (n_samples,), optional
        Run label of each sample; when given, folds are leave-one-group-out.
    gap : int, default=0
        See :func:`apply_gap`.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(train_idx, test_idx)`` pairs.

    Raises
    ------
    ValueError
        For inconsistent arguments (see :func:`contiguous_folds`, :func:`group_folds`,
        :func:`apply_gap`), or if ``groups`` does not have ``n_samples`` entries.
    """
    if groups is None:
        folds = contiguous_folds(n_samples, n_folds)
    else:
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise ValueError(
                f"groups must have one label per sample ({n_samples}), got shape {groups.shape}."
            )
        folds = group_folds(groups)
    return apply_gap(folds, gap, n_samples)
