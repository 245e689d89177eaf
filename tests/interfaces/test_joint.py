"""FitJoint passes --joint's spaces and settings to bids_w2v.encoding.banded."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.config import EncodingSettings, node_inputs
from bids_w2v.errors import InputError
from bids_w2v.interfaces.encoding import FitJoint


def _runs(tmp_path, n_runs=3, n_scans=60, seed=0):
    rng = np.random.default_rng(seed)
    a_files, b_files, bolds = [], [], []
    wa, wb = rng.standard_normal(6), rng.standard_normal(3)
    for i in range(n_runs):
        xa, xb = rng.standard_normal((n_scans, 6)), rng.standard_normal((n_scans, 3))
        y = np.column_stack([xa @ wa, xb @ wb, np.zeros(n_scans)]) + rng.standard_normal(
            (n_scans, 3)
        )
        a_files.append(str(tmp_path / f"a{i}.npz"))
        b_files.append(str(tmp_path / f"b{i}.npz"))
        bolds.append(str(tmp_path / f"bold{i}.npz"))
        np.savez(a_files[-1], conv0=xa, conv1=rng.standard_normal((n_scans, 2)))
        np.savez(b_files[-1], mel=xb)
        np.savez(bolds[-1], data=y, kept=np.arange(n_scans))
    return [a_files, b_files], bolds


def _node(designs, bolds, spaces, **settings):
    enc = EncodingSettings(joint=tuple(spaces), joint_n_iter=4, **settings)
    return FitJoint(
        **node_inputs(FitJoint, enc, num_threads=1),
        spaces=list(enc.joint),
        design_files=designs,
        bold_files=bolds,
    )


def test_fit_joint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    designs, bolds = _runs(tmp_path)
    out = np.load(_node(designs, bolds, ["model:conv0", "mel"], cv="runs").run().outputs.out_file)
    assert out["layers"].tolist() == ["conv0", "mel"]
    assert out["fold_r2"].shape == (3, 3) and out["unique"].shape == (2, 3)
    assert out["unique"][0, 0] > 0.3 and out["unique"][1, 1] > 0.3
    assert abs(out["unique"][0, 1]) < 0.1 and abs(out["unique"][1, 0]) < 0.1


def test_fit_joint_solver_reaches_banded_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    designs, bolds = _runs(tmp_path)
    node = _node(designs, bolds, ["model:conv0", "mel"], joint_solver="himalaya")
    assert node.inputs.joint_solver == "himalaya"
    ref = dict(np.load(node.run().outputs.out_file))  # (both nodes write to the same cwd)
    assert _node(designs, bolds, ["model:conv0", "mel"]).inputs.joint_solver == "loo"
    out = np.load(_node(designs, bolds, ["model:conv0", "mel"]).run().outputs.out_file)
    # inner 5-fold and leave-one-out choose similar penalties on these clear voxels
    np.testing.assert_allclose(out["unique"][:, :2], ref["unique"][:, :2], atol=0.05)


def test_fit_joint_errors_are_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    designs, bolds = _runs(tmp_path)
    with pytest.raises(InputError, match="name one as model:LAYER"):
        _node(designs, bolds, ["model", "mel"]).run()
    with pytest.raises(InputError, match="no layer 'conv9'"):
        _node(designs, bolds, ["model:conv9", "mel"]).run()
    designs, bolds = _runs(tmp_path, n_runs=1, n_scans=8)
    with pytest.raises(InputError, match="cannot be cross-validated on 1 run"):
        _node(designs, bolds, ["model:conv0", "mel"]).run()
