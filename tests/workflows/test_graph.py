"""The Nipype graph: named nodes, resources, plugins (--use-plugin), --write-graph, resuming."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil

import pytest

from bids_w2v.cli.build import build_config
from bids_w2v.cli.parser import build_parser
from bids_w2v.cli.plugin import (
    add_sbatch_resources,
    available_plugins,
    load_plugin_file,
    plugin_settings,
)
from bids_w2v.cli.run import main
from bids_w2v.errors import InputError
from bids_w2v.workflows.participant import clean_mem_gb, fit_mem_gb

# --- plugin files ------------------------------------------------------------------------------


def test_plugin_file_as_fmriprep_reads_it(tmp_path):
    path = tmp_path / "plugin.yml"
    path.write_text(
        "plugin: SLURM\n"
        "plugin_args:\n"
        "  sbatch_args: --partition=normal --time=01:00:00\n"
        "  max_jobs: 20\n"
    )
    assert load_plugin_file(path) == (
        "SLURM",
        {"sbatch_args": "--partition=normal --time=01:00:00", "max_jobs": 20},
    )
    path.write_text('{"plugin": "multiprocPlugin"}')  # JSON is YAML; Nipype's class name works
    assert load_plugin_file(path) == ("MultiProc", {})
    assert {"Linear", "MultiProc", "SLURM", "SGE", "PBS"} <= set(available_plugins())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plugin: [MultiProc\n", "not valid YAML (line"),
        ("plugin_args: {n_procs: 2}\n", "does not name a plugin"),
        ("plugin: Slurmish\n", "does not have. Use one of:"),
        ("plugin: SLURM\nplugin_args: [--time=1]\n", "'plugin_args' must be a mapping"),
        ("plugin: SLURM\nplugin-args: {}\n", "unknown keys 'plugin-args'"),
    ],
)
def test_bad_plugin_file(tmp_path, text, expected):
    path = tmp_path / "plugin.yml"
    path.write_text(text)
    with pytest.raises(InputError, match="--use-plugin file") as info:
        load_plugin_file(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_plugin_file_never_runs_code(tmp_path):
    """YAML tags that build Python objects are refused, and nothing is executed."""
    marker = tmp_path / "executed"
    path = tmp_path / "plugin.yml"
    path.write_text(
        f'plugin: !!python/object/apply:os.system ["touch {marker}"]\n'
        "plugin_args: {}\n"
    )
    with pytest.raises(InputError, match="not valid YAML"):
        load_plugin_file(path)
    assert not marker.exists()


def test_bad_plugin_file_on_the_command_line(tmp_path, capsys, monkeypatch):
    """The CLI reports a bad --use-plugin file in one paragraph, exit 2, no traceback."""
    monkeypatch.delenv("NIPYPE_NO_ET", raising=False)
    missing = tmp_path / "nowhere.yml"
    code = main([str(tmp_path / "ds"), str(tmp_path / "out"), "participant", "--notrack",
                 "--use-plugin", str(missing)])  # fmt: skip
    assert os.environ["NIPYPE_NO_ET"] == "1"  # no telemetry, with or without --notrack
    err = capsys.readouterr().err
    assert code == 2
    assert f"--use-plugin file {missing} cannot be read" in err
    assert "Traceback" not in err and err.count("\n") == 1


# --- resources reach the plugin ----------------------------------------------------------------


def _config(tmp_path, *extra):
    args = build_parser().parse_args(
        [str(tmp_path / "ds"), str(tmp_path / "out"), "participant", *extra]
    )
    return build_config(args)


def test_nprocs_and_mem_reach_multiproc(tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: MultiProc\nplugin_args: {maxtasksperchild: 1, n_procs: 64}\n")
    config = _config(
        tmp_path, "--nprocs", "3", "--mem", "8GB", "--use-plugin", str(plugin_file)
    )
    plugin, args = plugin_settings(
        config.plugin, config.plugin_args, nprocs=config.nprocs, mem_gb=config.mem_gb
    )
    assert plugin == "MultiProc"
    assert args == {
        "maxtasksperchild": 1,
        "n_procs": 3,  # --nprocs wins, as in fMRIPrep
        "memory_gb": 8.0,
        "raise_insufficient": False,
        "mp_context": "spawn",  # workers never inherit a parent's OpenMP threads
    }
    # defaults: one process runs Linear, several run MultiProc with the given budget
    assert plugin_settings(None, {}, nprocs=1, mem_gb=None) == ("Linear", {})
    assert plugin_settings(None, {}, nprocs=2, mem_gb=4.0) == (
        "MultiProc",
        {"n_procs": 2, "memory_gb": 4.0, "raise_insufficient": False, "mp_context": "spawn"},
    )
    # other plugins get their arguments as written
    assert plugin_settings("SLURM", {"sbatch_args": "-p x"}, nprocs=4, mem_gb=2.0) == (
        "SLURM",
        {"sbatch_args": "-p x"},
    )


def test_run_control_flags_reach_the_config(tmp_path):
    config = _config(tmp_path, "--write-graph", "--stop-on-first-crash", "--notrack")
    assert config.write_graph and config.stop_on_first_crash and config.plugin is None
    defaults = _config(tmp_path)
    assert not defaults.write_graph and not defaults.stop_on_first_crash


def test_fit_memory_follows_voxels_times_scans():
    base = fit_mem_gb(n_scans=1000, n_voxels=200_000, voxel_chunk=20_000)
    assert fit_mem_gb(2000, 200_000, 20_000) == pytest.approx(2 * base, rel=0.05)
    assert fit_mem_gb(1000, 400_000, 20_000) == pytest.approx(1.8 * base, rel=0.15)
    assert fit_mem_gb(1000, 400_000, 20_000) > base
    assert fit_mem_gb(10, 10, 20_000) == 0.5  # a floor for tiny inputs
    assert clean_mem_gb(2000, 200_000) == pytest.approx(2 * clean_mem_gb(1000, 200_000))
    assert clean_mem_gb(1000, 400_000) == pytest.approx(2 * clean_mem_gb(1000, 200_000))


# --- the participant graph on the simulated dataset --------------------------------------------


@pytest.fixture(scope="module")
def first_run(sim_dataset, tiny_model, tmp_path_factory):
    """sub-01 run once with --write-graph; result-file times of every node afterwards."""
    root, _, _ = sim_dataset
    out = tmp_path_factory.mktemp("graph_out") / "bids-w2v"
    work = tmp_path_factory.mktemp("graph_work")
    args = [str(root), str(out), "participant", "--participant-label", "01",
            "--model", str(tiny_model), "-w", str(work)]  # fmt: skip
    assert main([*args, "--write-graph"]) == 0
    results = {p: p.stat().st_mtime_ns for p in work.rglob("result_*.pklz")}
    maps = {p: p.read_bytes() for p in out.rglob("*_statmap.nii.gz")}
    return args, out, work, results, maps


def _edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"(\w+) -> (\w+);", dot))


@pytest.mark.slow
def test_write_graph_names_every_step(first_run):
    _, _, work, _, _ = first_run
    dot = (work / "bids_w2v_wf" / "graph.dot").read_text()
    labels = set(re.findall(r'label="(\w+) \(', dot))
    assert {"brain_mask", "clean_bold", "build_design", "fit_layer", "write_maps",
            "report"} <= labels, labels  # fmt: skip
    assert any(label.startswith("extract_features") for label in labels), labels
    assert "cluster_bids_w2v_wf_sub_01_wf" in dot  # one sub-graph per participant
    edges = _edges(dot)
    for a, b in [("extract_features", "inputnode"), ("clean_bold", "build_design"),
                 ("build_design", "fit_layer"), ("fit_layer", "write_maps")]:  # fmt: skip
        assert any(a in x and y.endswith(b) for x, y in edges), (a, b)
    if shutil.which("dot"):
        svg = (work / "bids_w2v_wf" / "graph.svg").read_text()
        assert "<svg" in svg and "fit_layer" in svg


def _nodes(wf, name: str) -> list:
    """Nodes of a (nested) workflow whose own name starts with ``name``."""
    found = [wf.get_node(n) for n in wf.list_node_names()]
    return [n for n in found if n is not None and n.name.startswith(name)]


def test_nodes_declare_resources(sim_dataset, tiny_model, tmp_path):
    """Every fit and extraction node declares mem_gb/n_procs; fits grow with voxels x scans."""
    from bids_w2v.inputs.layout import collect_runs, load_layout
    from bids_w2v.workflows.base import init_bids_w2v_wf

    root, _, _ = sim_dataset
    config = _config(tmp_path, "--nprocs", "2", "--omp-nthreads", "2", "--model", str(tiny_model))
    config = dataclasses.replace(config, bids_dir=root)
    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=False)
    runs = collect_runs(layout, "01", "listen", config.space, config.res)
    wf = init_bids_w2v_wf({"01": runs}, config)
    (fit,) = _nodes(wf, "fit_layer")
    (extract,) = _nodes(wf, "extract_features")
    assert fit.n_procs == 2 and extract.n_procs == 2 and extract.mem_gb >= 1
    n_scans = sum(r.n_scans for r in runs)
    assert fit.mem_gb == fit_mem_gb(n_scans, 5 * 5 * 4, config.encoding.voxel_chunk)
    (clean,) = _nodes(wf, "clean_bold")
    assert clean.mem_gb == clean_mem_gb(max(r.n_scans for r in runs), 5 * 5 * 4)
    add_sbatch_resources(wf)
    mem_mb = math.ceil(extract.mem_gb * 1024)
    assert extract.plugin_args["sbatch_args"] == f"--mem={mem_mb}M --cpus-per-task=2"
    assert "--cpus-per-task=2" in fit.plugin_args["sbatch_args"]


def test_extraction_alone_uses_every_cpu_fits_share(sim_dataset, tiny_model, tmp_path):
    """The extraction runs alone: all --nprocs threads, declared; two models share them; the
    fits, side by side, use and declare --omp-nthreads each."""
    from bids_w2v.inputs.layout import collect_runs, load_layout
    from bids_w2v.workflows.base import init_bids_w2v_wf

    root, _, _ = sim_dataset
    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=False)
    runs = collect_runs(layout, "01", "listen", "MNI152NLin2009cAsym", None)
    two = [str(tiny_model), f"{tiny_model}:random"]
    for models, expected in (([str(tiny_model)], 6), (two, 3)):
        config = _config(tmp_path, "--nprocs", "6", "--model", *models)
        config = dataclasses.replace(config, bids_dir=root)
        assert config.omp_nthreads == 5
        wf = init_bids_w2v_wf({"01": runs}, config)
        for node in _nodes(wf, "extract_features"):
            assert node.n_procs == expected and node.inputs.num_threads == expected
        for node in _nodes(wf, "fit_layer"):
            assert node.n_procs == 5 and node.inputs.num_threads == 5


@pytest.mark.slow
def test_finished_run_reruns_from_cache(first_run):
    """A second run executes no node again (Nipype's result files untouched), same maps."""
    args, out, work, results, maps = first_run
    assert any("fit_layer" in str(p) for p in results)
    assert main([*args, "--notrack", "--stop-on-first-crash"]) == 0
    rerun = {p: p.stat().st_mtime_ns for p in work.rglob("result_*.pklz")}
    assert rerun.keys() == results.keys()
    executed = sorted(str(p.relative_to(work)) for p in results if rerun[p] != results[p])
    assert executed == []
    assert {p: p.read_bytes() for p in out.rglob("*_statmap.nii.gz")} == maps
