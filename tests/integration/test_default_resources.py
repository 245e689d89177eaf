"""A participant run with the default resource flags: the machine's CPUs and memory are
resolved and recorded, and the run shows its progress (nodes done of total) in its log."""

from __future__ import annotations

import re

import pytest

from bids_w2v.cli.run import main
from bids_w2v.outputs.record import config_from_toml
from bids_w2v.resources import available_cpus, default_omp_nthreads


@pytest.mark.slow
def test_default_flags_use_the_machine_and_show_progress(tmp_path, tiny_model, capsys):
    from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset

    root = tmp_path / "ds"
    spec = SimulationSpec(
        model=str(tiny_model), random_init=False, subjects=("01",), shape=(4, 4, 3),
        planted=(("conv1", 6),), n_runs=2,
    )  # fmt: skip
    simulate_dataset(root, spec, cache_dir=tmp_path / "sim-cache")
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(root), str(out), "participant", "--model", str(tiny_model), "-w", str(work)]
    assert main(args) == 0
    captured = capsys.readouterr()
    (record,) = (out / "logs").glob("config-participant-*.toml")
    config = config_from_toml(record.read_text())
    assert config.nprocs == available_cpus()
    assert config.omp_nthreads == default_omp_nthreads(config.nprocs)
    assert config.mem_gb is not None and config.mem_gb > 0
    # stderr is not a terminal here: one line per node, the last one with every node done
    done = re.findall(r"^bids-w2v: \[(\d+)/(\d+) nodes\] (.+) (?:done|failed)", captured.err, re.M)
    assert done, captured.err
    assert done[-1][0] == done[-1][1]
    assert any(name.startswith("extract_features_") for _, _, name in done)
    assert any("fit_layer[" in name for _, _, name in done)
    assert not list(work.glob("progress-*"))  # the progress folder is removed

    # -q: nothing but errors
    assert main([*args, "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "bids-w2v" not in captured.err
