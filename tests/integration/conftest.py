"""Pipeline runs shared by the integration tests that only read their outputs.

``participant_run`` and ``group_run`` run bids-w2v once per test session on the simulated
dataset (``sim_dataset``): tests that read maps, sidecars or reports share them instead of
running the pipeline again. A test that changes outputs works on a copy (``shutil.copytree``).
Both fixtures block the network (``network_attempts``) and check that no run touched it.
"""

from __future__ import annotations

import shutil

import pytest

from bids_w2v.cli.run import main
from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset
from tests.integration.slurm_cluster import slurm_cluster  # noqa: F401 - fixture


@pytest.fixture(scope="session")
def participant_run(sim_dataset, tiny_model, tmp_path_factory, network_attempts):
    """Participant level of both participants, every layer of the tiny model, ``--nprocs 2``.

    Returns
    -------
    out, work : Path
        OUTPUT_DIR (participant maps only; read only, copy it to change anything) and the
        work folder, which ``group_run`` shares.
    """
    root, _, _ = sim_dataset
    base = tmp_path_factory.mktemp("participant_run")
    out, work = base / "bids-w2v", base / "work"
    args = ["--nprocs", "2", "--model", str(tiny_model), "-w", str(work)]
    assert main([str(root), str(out), "participant", *args]) == 0
    assert network_attempts == [], "a run must not touch the network"
    return out, work


@pytest.fixture(scope="session")
def group_run(participant_run, sim_dataset, tiny_model, tmp_path_factory, network_attempts):
    """The group level on a copy of ``participant_run``'s outputs (same work folder).

    Returns
    -------
    out, work : Path
        OUTPUT_DIR (participant and group maps, reports) and the participant run's work
        folder. Tests may re-run the participant level there (identical maps); copy the
        folder to change anything else.
    """
    root, _, _ = sim_dataset
    participant_out, work = participant_run
    out = tmp_path_factory.mktemp("group_run") / "bids-w2v"
    shutil.copytree(participant_out, out)
    assert main([str(root), str(out), "group", "--model", str(tiny_model), "-w", str(work)]) == 0
    assert network_attempts == [], "a run must not touch the network"
    return out, work


@pytest.fixture(scope="session")
def surface_dataset(tmp_path_factory, tiny_model):
    """One participant, four runs, as volumes, GIfTI (fsaverage5) and CIFTI (fsLR)."""
    root = tmp_path_factory.mktemp("surface_ds")
    spec = SimulationSpec(
        model=str(tiny_model),
        random_init=False,
        subjects=("01",),
        shape=(5, 5, 4),
        planted=(("conv1", 10), ("transformer1", 10)),
        snr=2.0,
        surfaces=("fsaverage5", "fsLR"),
    )
    truth = simulate_dataset(root, spec)
    return root, truth


@pytest.fixture
def surface_copy(surface_dataset, copy_dataset):
    """A copy of ``surface_dataset`` that a test may break."""
    return copy_dataset(surface_dataset[0])
