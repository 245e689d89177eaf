"""Outer folds of the encoding engine: contiguous K-fold, leave-one-group-out, gap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, LeaveOneGroupOut

from bids_w2v.encoding import apply_gap, contiguous_folds, group_folds, make_folds


@pytest.mark.parametrize("n_samples,n_folds", [(10, 2), (11, 5), (200, 5), (1003, 7), (5, 5)])
def test_contiguous_folds_match_sklearn_kfold(n_samples: int, n_folds: int) -> None:
    ours = contiguous_folds(n_samples, n_folds)
    ref = list(KFold(n_folds, shuffle=False).split(np.zeros(n_samples)))
    assert len(ours) == n_folds
    for (tr, te), (rtr, rte) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(tr, rtr)
        np.testing.assert_array_equal(te, rte)


@settings(max_examples=60, deadline=None)
@given(n_samples=st.integers(2, 300), n_folds=st.integers(2, 12))
def test_contiguous_folds_properties(n_samples: int, n_folds: int) -> None:
    if n_samples < n_folds:
        with pytest.raises(ValueError):
            contiguous_folds(n_samples, n_folds)
        return
    folds = contiguous_folds(n_samples, n_folds)
    tests = [te for _, te in folds]
    # unshuffled, contiguous test blocks that tile range(n) in order
    np.testing.assert_array_equal(np.concatenate(tests), np.arange(n_samples))
    for tr, te in folds:
        assert te.size >= 1
        np.testing.assert_array_equal(np.diff(te), 1)
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(n_samples))
        assert np.intersect1d(tr, te).size == 0
    sizes = [te.size for te in tests]
    assert max(sizes) - min(sizes) <= 1


def test_group_folds_leave_one_run_out() -> None:
    groups = np.array([2, 2, 2, 0, 0, 1, 1, 1, 1, 0])  # unsorted, non-contiguous labels
    ours = group_folds(groups)
    ref = list(LeaveOneGroupOut().split(np.zeros(groups.size), groups=groups))
    assert len(ours) == 3
    for (tr, te), (rtr, rte) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(tr, rtr)
        np.testing.assert_array_equal(te, rte)
    np.testing.assert_array_equal(ours[0][1], [3, 4, 9])  # label 0 first


def test_gap_removes_exactly_the_neighbours_of_the_test_block() -> None:
    folds = apply_gap(contiguous_folds(20, 4), 2, 20)
    # fold 1 tests 5..9: drop 3, 4 and 10, 11
    np.testing.assert_array_equal(folds[1][1], np.arange(5, 10))
    np.testing.assert_array_equal(folds[1][0], [0, 1, 2, 12, 13, 14, 15, 16, 17, 18, 19])
    # first and last folds only lose one side
    np.testing.assert_array_equal(folds[0][0], np.arange(7, 20))
    np.testing.assert_array_equal(folds[3][0], np.arange(0, 13))


@settings(max_examples=60, deadline=None)
@given(
    n_samples=st.integers(4, 120),
    n_folds=st.integers(2, 6),
    gap=st.integers(0, 10),
    n_groups=st.integers(0, 5),
)
def test_gap_property(n_samples: int, n_folds: int, gap: int, n_groups: int) -> None:
    if n_samples < n_folds:
        return
    groups = None
    if n_groups >= 2:
        groups = np.arange(n_samples) * n_groups // n_samples
    base = make_folds(n_samples, n_folds=n_folds, groups=groups)
    gapped = make_folds(n_samples, n_folds=n_folds, groups=groups, gap=gap)
    assert len(base) == len(gapped)
    for (tr0, te0), (tr, te) in zip(base, gapped, strict=True):
        np.testing.assert_array_equal(te0, te)
        dist = np.abs(tr0[:, None] - te0[None, :]).min(1)
        np.testing.assert_array_equal(tr, tr0[dist > gap])


def test_make_folds_with_groups_ignores_n_folds() -> None:
    groups = np.repeat([0, 1, 2], 10)
    folds = make_folds(30, n_folds=5, groups=groups)
    assert len(folds) == 3
    for k, (_, te) in enumerate(folds):
        np.testing.assert_array_equal(te, np.arange(10 * k, 10 * k + 10))


@pytest.mark.parametrize(
    "call",
    [
        lambda: contiguous_folds(10, 1),
        lambda: contiguous_folds(3, 4),
        lambda: contiguous_folds(10, 2.5),
        lambda: contiguous_folds(10, True),
        lambda: group_folds(np.zeros(10)),
        lambda: group_folds(np.zeros((5, 2))),
        lambda: make_folds(10, groups=np.repeat([0, 1], 4)),
        lambda: apply_gap(contiguous_folds(10, 2), -1, 10),
        lambda: make_folds(10, gap=1.5),
    ],
)
def test_bad_arguments_raise(call) -> None:
    with pytest.raises(ValueError):
        call()
