"""bids-w2v on a real SLURM cluster (slurmctld + slurmd on localhost, see slurm_cluster.py).

1. docs/hpc.md's job-array script (one participant per task) and the dependent group job,
   submitted with ``sbatch`` as the documentation writes them;
2. the participant workflow through Nipype's SLURM plugin (``--use-plugin``).

Both must write the same maps as a local run (``participant_run`` and ``group_run`` of
tests/integration/conftest.py).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hpc.md"


def _script(name: str) -> str:
    """The ``bash`` block that follows ```name```: in docs/hpc.md."""
    found = re.search(rf"`{re.escape(name)}`:\n\n```bash\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"no {name} in {DOCS}"
    return found.group(1)


def _maps(out: Path, pattern: str) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(out)): np.asarray(nb.load(p).dataobj)
        for p in sorted(out.glob(pattern))
    }


def _assert_same_maps(ours: dict, reference: dict) -> None:
    assert ours, "no maps written"
    assert set(ours) <= set(reference), sorted(set(ours) - set(reference))
    for name, values in ours.items():
        np.testing.assert_allclose(values, reference[name], rtol=1e-5, atol=1e-6, err_msg=name)


def _job_env(cluster, **variables) -> dict[str, str]:
    """The submitting shell's environment: this venv first on PATH, the site variables."""
    env = cluster.env
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in variables.items()})
    return env


def test_job_array_then_dependent_group_job(
    slurm_cluster, sim_dataset, tiny_model, group_run, tmp_path
):
    root, _, _ = sim_dataset
    out = tmp_path / "derivatives" / "bids-w2v"
    scripts = {}
    for name in ("participant.sbatch", "group.sbatch"):
        scripts[name] = tmp_path / name
        scripts[name].write_text(_script(name))
    env = _job_env(
        slurm_cluster,
        BIDS_DIR=root,
        OUTPUT_DIR=out,
        SCRATCH_DIR=tmp_path / "scratch",
        FEATURE_CACHE=tmp_path / "feature_cache",
        MODEL=tiny_model,
        HF_HOME=tmp_path / "hf-home",
        TEMPLATEFLOW_HOME=tmp_path / "templateflow",
    )
    # the documented submission, with resources this one-node test cluster can give
    small = ["--cpus-per-task=1", "--mem=1000M", "--time=00:15:00", f"--chdir={tmp_path}"]
    array = slurm_cluster.sbatch(*small, "--array=0-1", str(scripts["participant.sbatch"]),
                                 env=env)  # fmt: skip
    group = slurm_cluster.sbatch(*small, f"--dependency=afterok:{array}",
                                 str(scripts["group.sbatch"]), env=env)  # fmt: skip
    states = slurm_cluster.wait([array, group], timeout=900)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("*.log")))
    assert states == {array: ["COMPLETED", "COMPLETED"], group: ["COMPLETED"]}, logs

    # one work directory per task, one shared feature cache
    assert sorted(p.name for p in (tmp_path / "scratch" / "work").iterdir()) == [
        "group", "sub-01", "sub-02"]  # fmt: skip
    assert list((tmp_path / "feature_cache").iterdir())
    assert "bids-w2v: participant level done" in logs and "group level done" in logs

    # the same participant and group levels, run locally by tests/integration/conftest.py
    # (the group level adds sub-* maps too)
    local_out, _ = group_run
    participant = _maps(out, "sub-*/func/*_statmap.nii.gz")
    assert {k.split("/")[0] for k in participant} == {"sub-01", "sub-02"}
    _assert_same_maps(participant, _maps(local_out, "sub-*/func/*_statmap.nii.gz"))
    group_maps = _maps(out, "task-*_statmap.nii.gz")
    assert any("meanr" in k for k in group_maps)
    _assert_same_maps(group_maps, _maps(local_out, "task-*_statmap.nii.gz"))


def test_nipype_slurm_plugin(
    slurm_cluster, sim_dataset, tiny_model, participant_run, tmp_path, monkeypatch
):
    """Every node of sub-01's graph runs as its own SLURM job; same maps as locally."""
    root, _, _ = sim_dataset
    out, work = tmp_path / "out", tmp_path / "work"
    plugin = tmp_path / "slurm.yml"
    plugin.write_text(
        "plugin: SLURM\n"
        "plugin_args:\n"
        "  sbatch_args: --time=00:15:00\n"
        "  poll_sleep_duration: 1\n"
    )
    for name, value in _job_env(slurm_cluster).items():
        monkeypatch.setenv(name, value)
    layers = ["conv1", "transformer1"]  # two fits keep the number of jobs small
    code = main([str(root), str(out), "participant", "--participant-label", "01",
                 "--model", str(tiny_model), "-w", str(work), "--layers", ",".join(layers),
                 "--use-plugin", str(plugin)])  # fmt: skip
    assert code == 0

    # the nodes really ran as SLURM jobs, one each (MapNode items too), all completed
    jobs = re.findall(r"JobName=(\S+) .*?JobState=(\S+)",
                      slurm_cluster.command("scontrol", "-o", "show", "job"))  # fmt: skip
    jobs = [(name, state) for name, state in jobs if not name.startswith("bids-w2v-")]
    for node in ("extract_features", "brain_mask", "clean_bold", "build_design", "fit_layer",
                 "report"):  # fmt: skip
        assert any(node in name for name, _ in jobs), (node, jobs)
    # extraction, mask, 4 runs cleaned, 4 designs, 2 fits, their 3 MapNodes, maps, report
    assert len(jobs) >= 12 and {state for _, state in jobs} == {"COMPLETED"}, jobs
    assert list((work / "bids_w2v_wf" / "batch").glob("slurm-*.out"))

    ours = _maps(out, "sub-01/func/*_stat-r_statmap.nii.gz")
    assert len(ours) == len(layers)
    _assert_same_maps(ours, _maps(participant_run[0], "sub-01/func/*_stat-r_statmap.nii.gz"))
