"""The defaults of --nprocs, --omp-nthreads and --mem, resolved from fake affinity, cgroup,
/proc and SLURM values handed to the detectors (the files and environment they read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_w2v.cli.build import build_config
from bids_w2v.cli.parser import build_parser
from bids_w2v.outputs.record import config_to_toml
from bids_w2v.resources import (
    available_cpus,
    available_memory_gb,
    cgroup_cpu_limit,
    cgroup_memory_limit,
    default_omp_nthreads,
    meminfo_available,
    node_threads,
    slurm_memory,
)

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GB = 2**30


def _cgroup_v2(tmp_path: Path, path: str = "/", **files: str) -> tuple[Path, Path]:
    """A fake unified hierarchy: files written in the process' cgroup folder."""
    root = tmp_path / "cgroup"
    folder = root / path.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(f"0::{path}\n")
    return root, proc


def _cgroup_v1(tmp_path: Path, mounts: dict[str, dict[str, str]], path: str = "/") -> tuple:
    """A fake v1 layout: one mount per controller list (``cpu,cpuacct``, ``memory``)."""
    root = tmp_path / "cgroup1"
    lines = []
    for i, (controllers, files) in enumerate(mounts.items(), start=1):
        folder = root / controllers / path.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        lines.append(f"{i}:{controllers}:{path}")
    proc = tmp_path / "proc_cgroup1"
    proc.write_text("\n".join(lines) + "\n0::/\n")
    return root, proc


def test_cgroup_v2_cpu_quota(tmp_path):
    root, proc = _cgroup_v2(tmp_path, "/job/step", cpu_max="250000 100000\n")
    assert cgroup_cpu_limit(root, proc) == pytest.approx(2.5)
    assert available_cpus(affinity=16, root=root, proc_cgroup=proc, environ={}) == 3
    # no quota ("max"): the affinity decides
    root, proc = _cgroup_v2(tmp_path / "b", cpu_max="max 100000\n")
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(affinity=6, root=root, proc_cgroup=proc, environ={}) == 6


def test_cgroup_v2_quota_of_an_ancestor_applies(tmp_path):
    root, proc = _cgroup_v2(tmp_path, "/outer/inner", cpu_max="max 100000")
    (root / "outer" / "cpu.max").write_text("100000 100000")
    assert available_cpus(affinity=8, root=root, proc_cgroup=proc, environ={}) == 1


def test_cgroup_v1_cfs_quota(tmp_path):
    cpu = {"cpu.cfs_quota_us": "400000", "cpu.cfs_period_us": "100000"}
    root, proc = _cgroup_v1(tmp_path, {"cpu,cpuacct": cpu}, path="/docker/abc")
    assert cgroup_cpu_limit(root, proc) == pytest.approx(4.0)
    assert available_cpus(affinity=32, root=root, proc_cgroup=proc, environ={}) == 4
    unlimited = {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}
    root, proc = _cgroup_v1(tmp_path / "u", {"cpu,cpuacct": unlimited})
    assert cgroup_cpu_limit(root, proc) is None


def test_slurm_cpus_and_the_smallest_wins(tmp_path):
    root, proc = _cgroup_v2(tmp_path, cpu_max="600000 100000")
    env = {"SLURM_CPUS_PER_TASK": "4"}
    assert available_cpus(affinity=64, root=root, proc_cgroup=proc, environ=env) == 4
    assert available_cpus(affinity=2, root=root, proc_cgroup=proc, environ=env) == 2
    empty = tmp_path / "nothing"
    assert available_cpus(affinity=5, root=empty, proc_cgroup=empty, environ={}) == 5
    # a malformed value is ignored, not an error
    assert available_cpus(affinity=3, root=empty, proc_cgroup=empty,
                          environ={"SLURM_CPUS_PER_TASK": "lots"}) == 3  # fmt: skip


def test_memory_is_the_smallest_of_cgroup_meminfo_and_slurm(tmp_path):
    root, proc = _cgroup_v2(tmp_path, memory_max=str(8 * GB))
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 65000000 kB\nMemAvailable: 12582912 kB\n")  # 12 GiB
    assert meminfo_available(meminfo) == 12 * GB
    assert cgroup_memory_limit(root, proc) == 8 * GB
    kwargs = dict(root=root, proc_cgroup=proc, meminfo=meminfo)
    assert available_memory_gb(**kwargs, environ={}) == 8.0
    assert available_memory_gb(**kwargs, environ={"SLURM_MEM_PER_NODE": "4096"}) == 4.0
    per_cpu = {"SLURM_MEM_PER_CPU": "1024", "SLURM_CPUS_PER_TASK": "3"}
    assert slurm_memory(per_cpu) == 3 * GB
    root, proc = _cgroup_v2(tmp_path / "max", memory_max="max")
    assert available_memory_gb(root=root, proc_cgroup=proc, meminfo=meminfo, environ={}) == 12.0
    nothing = tmp_path / "none"
    assert (
        available_memory_gb(root=nothing, proc_cgroup=nothing, meminfo=nothing, environ={}) is None
    )


def test_cgroup_v1_memory_without_limit_is_ignored(tmp_path):
    root, proc = _cgroup_v1(tmp_path, {"memory": {"memory.limit_in_bytes": "9223372036854771712"}})
    assert cgroup_memory_limit(root, proc) is None
    root, proc = _cgroup_v1(tmp_path / "l", {"memory": {"memory.limit_in_bytes": str(2 * GB)}})
    assert cgroup_memory_limit(root, proc) == 2 * GB


@pytest.mark.parametrize(
    ("nprocs", "plugin", "expected"),
    [(1, None, 1), (2, None, 1), (4, None, 3), (9, None, 8), (64, None, 8), (16, "Linear", 16)],
)
def test_omp_nthreads_as_fmriprep(nprocs, plugin, expected):
    assert default_omp_nthreads(nprocs, plugin) == expected


def test_a_node_alone_uses_every_cpu_and_side_by_side_they_share():
    assert node_threads(8, 7) == 8
    assert node_threads(8, 2, side_by_side=2) == 4
    assert node_threads(2, 1, side_by_side=3) == 1
    assert node_threads(2, 4, side_by_side=1) == 4  # an explicit --omp-nthreads is a floor


def test_recorded_toml_carries_the_resolved_numbers(tmp_path, monkeypatch):
    """A fake SLURM allocation resolves the defaults; the config record has the numbers."""
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    args = build_parser().parse_args([str(tmp_path), str(tmp_path / "out"), "group"])
    config = build_config(args)
    assert (config.nprocs, config.omp_nthreads) == (1, 1)
    assert 0 < config.mem_gb <= 1.0
    record = tomllib.loads(config_to_toml(config))["bids_w2v"]
    assert (record["nprocs"], record["omp_nthreads"]) == (1, 1)
    assert record["mem_gb"] == config.mem_gb
    # given values are kept as given
    args = build_parser().parse_args(
        [str(tmp_path), str(tmp_path / "o"), "group", "--nprocs", "6", "--mem", "2GB"]
    )
    config = build_config(args)
    assert (config.nprocs, config.omp_nthreads, config.mem_gb) == (6, 5, 2.0)


def test_help_shows_the_defaults_on_this_machine(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"({available_cpus()} here, so --omp-nthreads defaults to" in text
    assert "GB here)" in text or "unknown here" in text
