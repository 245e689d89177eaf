"""DTW and frame distances: a case computed by hand, and parity with dtw-python."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bids_w2v.abx.dtw import dtw_costs, frame_distances, pair_distances


def test_hand_computed_case():
    # x = [1,0],[0,1]; y = [1,0],[1,1],[0,1]; cosine distances d = [[0, c, 1], [1, c, 0]],
    # c = 1 - 1/sqrt(2). Accumulated: row 0: 0, c, 1 + c; row 1: 1, c, c. Backtracking from
    # (1, 2): diagonal (0, 1) is the smallest, then along row 0 to (0, 0): path length 3.
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    c = 1 - 1 / math.sqrt(2)
    dist = frame_distances(torch.tensor(x), torch.tensor(y), "cosine")
    np.testing.assert_allclose(dist.numpy(), [[0, c, 1], [1, c, 0]], atol=1e-12)
    raw = dtw_costs(dist[None], torch.tensor([2]), torch.tensor([3]), normalized=False)
    assert raw.item() == pytest.approx(c)
    assert pair_distances([x, y], np.array([[0, 1]]), "cosine")[0] == pytest.approx(c / 3)
    # angular: arccos(1/sqrt(2)) / pi = 1/4 on the middle column
    angular = pair_distances([x, y], np.array([[0, 1]]), "angular")[0]
    assert angular == pytest.approx(0.25 / 3)


def test_identical_sequences_have_zero_distance():
    x = np.random.default_rng(0).normal(size=(7, 4))
    assert pair_distances([x, x.copy()], np.array([[0, 1]]), "angular")[0] == pytest.approx(
        0.0, abs=1e-7
    )


@pytest.mark.parametrize("distance", ["cosine", "angular"])
def test_parity_with_dtw_python(distance):
    dtw = pytest.importorskip("dtw")  # dtw-python, pinned in the test extra
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(int(rng.integers(1, 25)), 6)) for _ in range(40)]
    pairs = np.array([(i, j) for i in range(40) for j in range(i + 1, 40, 7)])
    ours = pair_distances(feats, pairs, distance, batch_size=37)  # several padded batches
    for (i, j), value in zip(pairs, ours, strict=True):
        local = frame_distances(torch.tensor(feats[i]), torch.tensor(feats[j]), distance)
        ref = dtw.dtw(local.numpy(), step_pattern=dtw.symmetric1)
        assert value == pytest.approx(ref.distance / len(ref.index1), rel=1e-9, abs=1e-12)


def test_padding_does_not_change_costs():
    rng = np.random.default_rng(2)
    short, long = rng.normal(size=(3, 5)), rng.normal(size=(30, 5))
    alone = pair_distances([short, short[::-1].copy()], np.array([[0, 1]]), "cosine")
    mixed = pair_distances(
        [short, short[::-1].copy(), long], np.array([[0, 1], [2, 2], [0, 2]]), "cosine"
    )
    assert mixed[0] == pytest.approx(alone[0], rel=1e-12)
