"""Model vs human accuracy per contrast; native-language effect; bad human files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_w2v.abx.human import compare_with_humans, read_human_results
from bids_w2v.errors import InputError

# model ABX error per ordered contrast (both orders of a contrast are averaged)
MODEL = pd.DataFrame(
    [
        ("p", "b", 0.10), ("b", "p", 0.20),
        ("t", "d", 0.30), ("d", "t", 0.30),
        ("i", "e", 0.05), ("e", "i", 0.15),
        ("u", "y", 0.40), ("y", "u", 0.50),
        ("r", "l", 0.25), ("l", "r", 0.35),
    ],
    columns=["phone_a", "phone_b", "error"],
)  # fmt: skip
HUMAN = """phone_a\tphone_b\taccuracy\tnative
p\tb\t0.9\t1
b\tp\t0.8\t1
t\td\t0.7\t1
e\ti\t0.95\ttrue
u\ty\t1\t0
u\ty\t0\t0
y\tu\t1\t0
r\tl\t0.6\tfalse
"""


def test_correlation_and_native_effect(tmp_path):
    path = tmp_path / "human.tsv"
    path.write_text(HUMAN)
    human = read_human_results(path)
    out = compare_with_humans(MODEL, human, n_boot=500, seed=1)
    # by hand: model accuracy = 1 - mean error of both orders; human = mean of the rows
    model = {"b p": 0.85, "d t": 0.70, "e i": 0.90, "u y": 0.55, "l r": 0.70}
    people = {"b p": 0.85, "d t": 0.70, "e i": 0.95, "u y": 2 / 3, "l r": 0.60}
    keys = sorted(model)
    expected = stats.pearsonr([model[k] for k in keys], [people[k] for k in keys])[0]
    assert out["n_contrasts"] == 5
    assert out["pearson_r"] == pytest.approx(expected)
    assert out["ci_low"] <= out["pearson_r"] <= out["ci_high"] <= 1.0
    assert compare_with_humans(MODEL, human, n_boot=500, seed=1) == out  # seeded
    native, other = ["b p", "d t", "e i"], ["u y", "l r"]
    assert out["native_effect_model"] == pytest.approx(
        np.mean([model[k] for k in native]) - np.mean([model[k] for k in other])
    )
    assert out["native_effect_human"] == pytest.approx(
        np.mean([people[k] for k in native]) - np.mean([people[k] for k in other])
    )


def test_without_native_column(tmp_path):
    path = tmp_path / "human.tsv"
    path.write_text("phone_a\tphone_b\taccuracy\np\tb\t0.9\nt\td\t0.6\ni\te\t0.7\n")
    out = compare_with_humans(MODEL, read_human_results(path), n_boot=100)
    assert "native_effect_model" not in out and out["n_contrasts"] == 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("phone_a\tphone_b\nx\ty\n", "lack the column"),
        ("phone_a\tphone_b\taccuracy\nx\ty\t1.5\n", "Line 2 .* accuracy"),
        ("phone_a\tphone_b\taccuracy\tnative\nx\ty\t0.5\tmaybe\n", "native='maybe'"),
        ("phone_a\tphone_b\taccuracy\tnative\nx\ty\t0.5\t1\ny\tx\t0.5\t0\n", "both native"),
    ],
)
def test_bad_human_files(tmp_path, text, message):
    path = tmp_path / "human.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_human_results(path)
    assert str(path) in str(info.value)
