"""The Nipype interfaces pass options through to the science modules."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.config import EncodingSettings, node_inputs
from bids_w2v.errors import InputError
from bids_w2v.interfaces.encoding import FitEncoding


def _runs(tmp_path, n_runs=3, n_scans=40, seed=0):
    rng = np.random.default_rng(seed)
    designs, bolds = [], []
    weights = rng.standard_normal(6)
    for i in range(n_runs):
        x = rng.standard_normal((n_scans, 6))
        y = np.column_stack(
            [
                x @ weights + rng.standard_normal(n_scans),
                rng.standard_normal(n_scans),
            ]
        )
        designs.append(str(tmp_path / f"design{i}.npz"))
        bolds.append(str(tmp_path / f"bold{i}.npz"))
        np.savez(designs[-1], conv0=x)
        np.savez(bolds[-1], data=y, kept=np.arange(n_scans))
    return designs, bolds


@pytest.mark.parametrize(("cv", "n_folds", "expected"), [("kfold", 4, 4), ("runs", 4, 3)])
def test_fit_encoding_cv(tmp_path, monkeypatch, cv, n_folds, expected):
    monkeypatch.chdir(tmp_path)
    designs, bolds = _runs(tmp_path)
    settings = EncodingSettings(cv=cv, n_folds=n_folds, gap=2)
    node = FitEncoding(
        **node_inputs(FitEncoding, settings, num_threads=1),
        design_files=designs,
        bold_files=bolds,
        layer="conv0",
    )
    out = np.load(node.run().outputs.out_file)
    assert out["fold_scores"].shape == (expected, 2)
    assert out["scores"][0] > 0.5 and abs(out["scores"][1]) < 0.4


def test_fit_encoding_too_few_scans_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    designs, bolds = _runs(tmp_path, n_runs=1, n_scans=6)
    node = FitEncoding(
        **node_inputs(FitEncoding, EncodingSettings(), num_threads=1),
        design_files=designs,
        bold_files=bolds,
        layer="conv0",
    )
    with pytest.raises(InputError, match="cannot be cross-validated on 1 run"):
        node.run()
