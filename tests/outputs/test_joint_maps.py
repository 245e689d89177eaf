"""The joint model's sidecar fields follow the run's --joint settings."""

from dataclasses import replace

from bids_w2v.config import EncodingSettings
from bids_w2v.outputs.joint_maps import joint_metadata


def test_sidecar_names_the_joint_solver():
    enc = EncodingSettings(joint=("a:l1", "mel"), joint_n_iter=7, joint_seed=2)
    meta = joint_metadata(enc)
    assert meta["JointSolver"] == "loo" and "leave-one-out" in meta["InnerCV"]
    assert (meta["RandomSearchDraws"], meta["RandomSearchSeed"]) == (7, 2)
    meta = joint_metadata(replace(enc, joint_solver="himalaya"))
    assert meta["JointSolver"] == "himalaya" and "5 contiguous" in meta["InnerCV"]
    assert "fitted by himalaya" in meta["Solver"]
