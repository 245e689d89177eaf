"""Nipype's worker processes (spawned by MultiProc) log at the command's level, not INFO."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_w2v.cli.execution import run_workflow
    from bids_w2v.config import RunConfig


    def add(x):
        return x + 1


    if __name__ == "__main__":
        tmp = Path(sys.argv[1])
        wf = pe.Workflow("w", base_dir=str(tmp / "work"))
        fn = niu.Function(input_names=["x"], output_names=["y"], function=add)
        a = pe.MapNode(fn, iterfield=["x"], name="a")
        a.inputs.x = [1, 2, 3]
        wf.add_nodes([a])
        config = RunConfig(bids_dir=tmp, output_dir=tmp / "out", analysis_level="participant",
                           work_dir=tmp / "work", nprocs=2, verbosity=int(sys.argv[2]))
        run_workflow(wf, config)
    """
)


def test_spawned_workers_follow_the_log_level(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "NIPYPE_NO_ET": "1"}
    env.pop("NIPYPE_CONFIG_DIR", None)
    quiet = subprocess.run([sys.executable, str(script), str(tmp_path / "q"), "-1"],
                           capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert "nipype.workflow INFO" not in quiet.stderr + quiet.stdout
    loud = subprocess.run([sys.executable, str(script), str(tmp_path / "l"), "2"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert loud.returncode == 0, loud.stderr
    assert "nipype.workflow INFO" in loud.stderr + loud.stdout  # -vv: Nipype's own log
