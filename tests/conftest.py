"""Shared fixtures: a tiny wav2vec2 saved like a user's model, and a simulated dataset."""

from __future__ import annotations

import os

os.environ.setdefault("NIPYPE_NO_ET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from tiny_models import save_tiny_wav2vec2  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny wav2vec2 saved by save_pretrained."""
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("tiny_wav2vec2"))


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory, tiny_model):
    """A simulated 2-subject, 4-run dataset whose planted voxels follow the tiny model."""
    from bids_w2v.simulate import SimulationSpec, simulate_dataset

    root = tmp_path_factory.mktemp("ds")
    spec = SimulationSpec(
        model=str(tiny_model),
        random_init=False,
        shape=(5, 5, 4),
        planted=(("conv1", 10), ("transformer1", 10)),
        snr=2.0,
    )
    truth = simulate_dataset(root, spec)
    return root, spec, truth
