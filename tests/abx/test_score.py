"""ABX triplets, cell errors and the ZeroSpeech averaging, on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bids_w2v.abx.score import abx_cells, average_cells, cell_error, score_features
from bids_w2v.errors import InputError


def _items(rows):
    items = pd.DataFrame(rows, columns=["file", "phone", "prev", "next", "speaker"])
    items["onset"], items["offset"] = 0.0, 1.0
    items["context"] = items["prev"] + "+" + items["next"]
    return items


# speaker s1: two "a" near [1, 0], one "b" at [0, 1]; speaker s2 the other way round
ROWS = [
    ("f1", "a", "x", "y", "s1"),
    ("f2", "a", "x", "y", "s1"),
    ("f3", "b", "x", "y", "s1"),
    ("f4", "a", "x", "y", "s2"),
    ("f5", "a", "x", "y", "s2"),
    ("f6", "b", "x", "y", "s2"),
]
FEATURES = [
    np.array([v], dtype=float) for v in ([1, 0], [1, 0.1], [0, 1], [0, 1], [0.1, 1], [1, 0])
]


def test_within_and_across_speaker_by_hand():
    # Within: X and A are the two "a" of a speaker, B its "b": always right (error 0); "b" has
    # a single item per speaker so (b, a) has no within cell. Across: A and B from one speaker,
    # X from the other, whose "a" sits where the first speaker's "b" is: always wrong (error 1).
    results = score_features(FEATURES, _items(ROWS), distances=("cosine", "angular"))
    for distance in ("cosine", "angular"):
        within, across = results[("within", distance)], results[("across", distance)]
        assert within.error == 0.0
        assert list(within.contrasts[["phone_a", "phone_b"]].itertuples(index=False)) == [
            ("a", "b")
        ]
        assert within.n_triplets == 2 * 2  # 2 speakers x (2 X, 1 A, 1 B)
        assert across.error == 1.0
        # (a, b): 2 speaker pairs x (2 X x 2 A x 1 B); (b, a): 2 x (1 X x 1 A x 2 B)
        assert across.n_triplets == 2 * 4 + 2 * 2


def test_identical_a_and_x_give_exactly_zero_error():
    rng = np.random.default_rng(0)
    base = [rng.normal(size=(int(rng.integers(2, 9)), 5)) for _ in range(4)]
    rows, feats = [], []
    for k, (phone, speaker) in enumerate([("a", "s1"), ("b", "s1"), ("a", "s2"), ("b", "s2")]):
        for copy in range(2):  # two items with identical features per phone and speaker
            rows.append((f"f{k}_{copy}", phone, "x", "y", speaker))
            feats.append(base[k].copy())
    results = score_features(feats, _items(rows), modes=("within",))
    assert results[("within", "cosine")].error == 0.0


def test_tie_counts_half():
    error, n = cell_error(np.array([[0.3]]), np.array([[0.3]]))
    assert (error, n) == (0.5, 1)
    error, n = cell_error(np.array([[0.1, 0.5], [0.5, 0.1]]), np.array([[0.2], [0.2]]),
                          same=np.array([[True, False], [False, True]]))  # fmt: skip
    assert (error, n) == (1.0, 2)  # the X == A pairs are left out, the others are wrong


def test_averaging_contexts_then_speakers_then_contrasts():
    cells = pd.DataFrame(
        [
            ("c1", "s1", "s1", "a", "b", 0.0),
            ("c2", "s1", "s1", "a", "b", 1.0),
            ("c1", "s2", "s2", "a", "b", 1.0),
            ("c1", "s1", "s1", "b", "a", 0.0),
        ],
        columns=["context", "speaker", "speaker_x", "phone_a", "phone_b", "error"],
    ).assign(n_triplets=1)
    error, contrasts = average_cells(cells)
    # (a, b): s1 -> mean(0, 1) = 0.5, s2 -> 1, contrast -> 0.75; (b, a): 0; overall 0.375
    assert error == pytest.approx(0.375)
    assert contrasts["error"].tolist() == pytest.approx([0.75, 0.0])
    assert contrasts["n_speakers"].tolist() == [2, 1]
    assert cells["error"].mean() != pytest.approx(error)  # not a flat mean of cells


def test_across_cells_pair_each_speaker_with_the_others():
    cells = abx_cells(_items(ROWS), "across")
    keys = sorted((c["speaker"], c["speaker_x"], c["phone_a"], c["phone_b"]) for c in cells)
    assert keys == [
        ("s1", "s2", "a", "b"),
        ("s1", "s2", "b", "a"),
        ("s2", "s1", "a", "b"),
        ("s2", "s1", "b", "a"),
    ]


def test_no_triplet_is_a_clear_error():
    rows = [("f1", "a", "x", "y", "s1"), ("f2", "b", "x", "y", "s1")]
    with pytest.raises(InputError, match="no triplet within speaker"):
        score_features(FEATURES[:2], _items(rows), modes=("within",))
    with pytest.raises(InputError, match="no triplet across speaker"):
        score_features(FEATURES[:2], _items(rows), modes=("across",))
