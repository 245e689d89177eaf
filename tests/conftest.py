"""Shared fixtures: a tiny wav2vec2 saved like a user's model, a simulated dataset and copies of
it that a test may break, and a guard against network access."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("NIPYPE_NO_ET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from bids_w2v.testing.tiny_models import save_tiny_wav2vec2  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny wav2vec2 saved by save_pretrained."""
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("tiny_wav2vec2"))


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory, tiny_model):
    """A simulated 2-subject, 4-run dataset whose planted voxels follow the tiny model."""
    from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset

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


@pytest.fixture
def copy_dataset(tmp_path):
    """``copy_dataset(root)``: a copy of the dataset ``root`` in ``tmp_path / "ds"``."""

    def copy(root):
        return shutil.copytree(root, tmp_path / "ds")

    return copy


@pytest.fixture
def sim_copy(sim_dataset, copy_dataset):
    """A copy of ``sim_dataset``'s folder that a test may break."""
    return copy_dataset(sim_dataset[0])


@pytest.fixture(scope="session")
def network_attempts():
    """Record (and refuse) every attempt to open an internet connection in this process."""
    import socket

    attempts: list = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(("connect", address))
            raise OSError("network access blocked by the bids-w2v test suite")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror("name resolution blocked by the bids-w2v test suite")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts
