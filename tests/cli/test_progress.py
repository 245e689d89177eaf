"""What a run shows: nodes done of total, the long steps' bars, one line per step off a
terminal, nothing with -q. The graph runs for real (Nipype MultiProc, worker processes)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from bids_w2v import progress as progress_mod
from bids_w2v.cli.progress import RunProgress, node_label, step_line
from bids_w2v.config import RunConfig
from bids_w2v.progress import Progress


def _node(fullname: str):
    return SimpleNamespace(fullname=fullname, name=fullname.rsplit(".", 1)[-1])


def test_node_labels():
    assert node_label(_node("bids_w2v_wf.sub_01_wf.clean_bold")) == "sub_01 clean_bold"
    assert node_label(_node("bids_w2v_wf.sub_01_wf.model_x_wf.fit_layer._fit_layer3")) == (
        "sub_01 model_x fit_layer[3]"
    )
    assert node_label(_node("bids_w2v_wf.extract_features_tiny")) == "extract_features_tiny"


def test_step_line_has_rate_and_time_left():
    state = {"label": "extract tiny", "unit": "s audio", "total": 100, "done": 25, "started": 0}
    line = step_line(state, now=50.0)
    assert line == "extract tiny:  25% (25/100 s audio) 0:50 elapsed, 2:30 left, 0.5 s audio/s"


def test_lines_when_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "MIN_INTERVAL", 0.0)
    out = io.StringIO()
    run = RunProgress(3, tmp_path, stream=out)
    assert not run.tty
    node = _node("bids_w2v_wf.sub_01_wf.clean_bold")
    run(node, "start")
    with Progress(10, "sub_01 fit conv0", "fold-chunks", folder=run.folder) as bar:
        for done in (1, 2, 3, 5, 5, 9):
            bar.advance_to(done)
            run.poll()
    run(node, "end")
    run(_node("bids_w2v_wf.sub_01_wf.fit_layer._fit_layer0"), "end")  # a subnode: not counted
    run(_node("bids_w2v_wf.sub_01_wf.report"), "exception")
    run.close()
    lines = out.getvalue().splitlines()
    steps = [line for line in lines if "fit conv0" in line]
    # one line per tenth reached (10 %, 20 %, 30 %, 50 %, 90 %), not one per poll
    assert [re.search(r"(\d+)%", line).group(1) for line in steps] == ["10", "20", "30", "50", "90"]
    assert "left" in steps[0] and "fold-chunks/s" in steps[0]
    assert lines[-3].startswith("bids-w2v: [1/3 nodes] sub_01 clean_bold done in ")
    assert lines[-2] == "bids-w2v: [1/3 nodes] sub_01 fit_layer[0] done"
    assert lines[-1] == "bids-w2v: [2/3 nodes] sub_01 report failed"
    assert not run.folder.exists()


def test_bars_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "MIN_INTERVAL", 0.0)
    out = io.StringIO()
    run = RunProgress(2, tmp_path, stream=out, tty=True)
    with Progress(492, "extract wav2vec2Base", "s audio", folder=run.folder) as bar:
        bar.advance_to(123)
        run.poll()
        text = out.getvalue()
        assert "extract wav2vec2Base" in text and "123/492 s audio" in text
        assert "0/2" in text and "node" in text
    run(_node("bids_w2v_wf.extract_features_x"), "end")
    run.poll()
    run.close()
    assert "1/2" in out.getvalue() or "2/2" in out.getvalue()


def _step(n):
    import time

    from bids_w2v.progress import Progress

    with Progress(n, "toy step", "items") as bar:
        for i in range(n):
            time.sleep(0.15)
            bar.advance_to(i + 1)
    return n


def _double(x):
    return 2 * x


def _graph(work: Path):
    from nipype.interfaces.utility import Function, IdentityInterface
    from nipype.pipeline import engine as pe

    wf = pe.Workflow(name="toy_wf", base_dir=str(work))
    inputnode = pe.Node(IdentityInterface(fields=["n"]), name="inputnode")
    inputnode.inputs.n = 12
    step = pe.Node(Function(["n"], ["out"], _step), name="step")
    double = pe.MapNode(Function(["x"], ["out"], _double), iterfield=["x"], name="double")
    double.inputs.x = [1, 2, 3]
    wf.connect([(inputnode, step, [("n", "n")])])
    wf.add_nodes([double])
    return wf


@pytest.mark.slow
@pytest.mark.parametrize("verbosity", [0, -1])
def test_a_real_run_reports_nodes_and_steps(tmp_path, capsys, verbosity):
    from bids_w2v.cli.execution import run_workflow

    work = tmp_path / "work"
    config = RunConfig(
        bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
        work_dir=work, nprocs=2, omp_nthreads=1, mem_gb=2.0, verbosity=verbosity,
    )  # fmt: skip
    run_workflow(_graph(work), config)
    err = capsys.readouterr().err
    print(err)
    lines = [line for line in err.splitlines() if line.startswith("bids-w2v: ")]
    if verbosity < 0:
        assert lines == []
        return
    assert any(re.match(r"bids-w2v: toy step: +\d+% \(\d+/12 items\)", line) for line in lines)
    done = [line for line in lines if " nodes] " in line]
    assert done[-1].startswith("bids-w2v: [2/2 nodes] ")  # step, double (identity: removed)
    assert sum("double[" in line for line in done) == 3
    assert not list(work.glob("progress-*"))
