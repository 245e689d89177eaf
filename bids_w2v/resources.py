"""The CPUs and memory this process may use: the defaults of ``--nprocs``, ``--omp-nthreads``
and ``--mem`` (science-free; no Nipype).

A BIDS-App uses the machine it is given, as fMRIPrep does: ``--nprocs`` defaults to the CPUs
available to the process, i.e. the smallest of its CPU affinity (``os.sched_getaffinity``), its
cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, rounded up) and
``SLURM_CPUS_PER_TASK``; ``--omp-nthreads`` to ``min(nprocs - 1, 8)`` (``nprocs`` when there is
one CPU, or when the nodes run one at a time); ``--mem`` to the memory available, i.e. the
smallest of the cgroup memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``),
``MemAvailable`` of ``/proc/meminfo`` and SLURM's allocation (``SLURM_MEM_PER_NODE``, or
``SLURM_MEM_PER_CPU`` times the CPUs per task).

Every reader takes the files and environment it reads as arguments, so that tests can hand it
fake ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
MEMINFO = Path("/proc/meminfo")
#: cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages)
_NO_LIMIT = 2**60
#: fMRIPrep's cap on the threads of one process
MAX_OMP_NTHREADS = 8

__all__ = [
    "affinity_cpus",
    "available_cpus",
    "available_memory_gb",
    "cgroup_cpu_limit",
    "cgroup_memory_limit",
    "default_omp_nthreads",
    "describe_cpus",
    "describe_memory",
    "meminfo_available",
    "node_threads",
    "resolve_resources",
    "slurm_cpus",
    "slurm_memory",
]


def affinity_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cgroup_dirs(root: Path, proc_cgroup: Path, controller: str | None) -> list[Path]:
    """Folders holding the process' cgroup files, innermost first, with their ancestors.

    ``controller=None``: the unified (v2) hierarchy; otherwise the v1 hierarchy of that
    controller (mounted as ``root/cpu``, ``root/cpu,cpuacct``...).
    """
    text = _read(proc_cgroup) or ""
    found: list[Path] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        names = [c for c in controllers.split(",") if c]
        if controller is None and not names:
            bases = [root]
        elif controller is not None and controller in names:
            bases = [root / controllers, root / controller]
        else:
            continue
        for base in bases:
            folder = base / path.lstrip("/")
            while True:  # a limit set on an ancestor applies too
                found.append(folder)
                if folder == base:
                    break
                folder = folder.parent
    if controller is None:
        found.append(root)
    else:
        found += [root / controller]
    return list(dict.fromkeys(found))


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of the process' cgroup in CPUs (e.g. 1.5), or None without a quota.

    The smallest quota of the cgroup and its ancestors, from cgroup v2 ``cpu.max``
    (``"QUOTA PERIOD"`` or ``"max PERIOD"``) or cgroup v1 ``cpu.cfs_quota_us`` (``-1``: none)
    and ``cpu.cfs_period_us``.
    """
    limits = []
    for folder in _cgroup_dirs(root, proc_cgroup, None):
        fields = (_read(folder / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0] != "max":
            try:
                quota, period = float(fields[0]), float(fields[1])
            except ValueError:
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
    for folder in _cgroup_dirs(root, proc_cgroup, "cpu"):
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        try:
            q, p = float(quota or "-1"), float(period or "0")
        except ValueError:
            continue
        if q > 0 and p > 0:
            limits.append(q / p)
    return min(limits) if limits else None


def cgroup_memory_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The memory limit of the process' cgroup in bytes, or None without one.

    The smallest of cgroup v2 ``memory.max`` (``"max"``: none) and cgroup v1
    ``memory.limit_in_bytes`` over the cgroup and its ancestors.
    """
    limits = []
    for name, controller in (("memory.max", None), ("memory.limit_in_bytes", "memory")):
        for folder in _cgroup_dirs(root, proc_cgroup, controller):
            text = _read(folder / name)
            if not text or text == "max":
                continue
            try:
                value = float(text)
            except ValueError:
                continue
            if 0 < value < _NO_LIMIT:
                limits.append(value)
    return min(limits) if limits else None


def meminfo_available(path: Path = MEMINFO) -> float | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None where there is no such file)."""
    for line in (_read(path) or "").splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            try:
                return float(fields[1]) * 1024  # kB
            except (IndexError, ValueError):
                return None
    return None


def _positive_int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = int(text.split("(")[0])  # SLURM_JOB_CPUS_PER_NODE style "4(x2)"
    except ValueError:
        return None
    return value if value > 0 else None


def slurm_cpus(environ: Mapping[str, str] | None = None) -> int | None:
    """``SLURM_CPUS_PER_TASK``, or None outside a SLURM job that sets it."""
    environ = os.environ if environ is None else environ
    return _positive_int(environ.get("SLURM_CPUS_PER_TASK"))


def slurm_memory(environ: Mapping[str, str] | None = None) -> float | None:
    """SLURM's memory allocation in bytes: ``SLURM_MEM_PER_NODE`` (MB), or
    ``SLURM_MEM_PER_CPU`` (MB) times ``SLURM_CPUS_PER_TASK`` (1 when unset); None without."""
    environ = os.environ if environ is None else environ
    per_node = _positive_int(environ.get("SLURM_MEM_PER_NODE"))
    if per_node is not None:
        return per_node * 2.0**20
    per_cpu = _positive_int(environ.get("SLURM_MEM_PER_CPU"))
    if per_cpu is not None:
        return per_cpu * 2.0**20 * (slurm_cpus(environ) or 1)
    return None


def available_cpus(
    *,
    affinity: int | None = None,
    root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The CPUs available to the process: the smallest of affinity, cgroup quota (rounded up)
    and ``SLURM_CPUS_PER_TASK``; at least 1.

    Parameters
    ----------
    affinity : int, optional
        CPUs of the affinity mask (default: :func:`affinity_cpus`).
    root, proc_cgroup : Path
        The cgroup file system and the process' ``/proc/self/cgroup``.
    environ : mapping, optional
        The environment (default ``os.environ``).
    """
    counts = [affinity if affinity is not None else affinity_cpus()]
    quota = cgroup_cpu_limit(root, proc_cgroup)
    if quota is not None:
        counts.append(math.ceil(quota - 1e-9))
    slurm = slurm_cpus(environ)
    if slurm is not None:
        counts.append(slurm)
    return max(1, min(counts))


def available_memory_gb(
    *,
    root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
    meminfo: Path = MEMINFO,
    environ: Mapping[str, str] | None = None,
) -> float | None:
    """The memory available to the process in GB (2**30 bytes): the smallest of the cgroup
    limit, ``MemAvailable`` and SLURM's allocation; None when none is known."""
    values = [
        v
        for v in (
            cgroup_memory_limit(root, proc_cgroup),
            meminfo_available(meminfo),
            slurm_memory(environ),
        )
        if v is not None
    ]
    if not values:
        return None
    return round(min(values) / 2**30, 2)


def default_omp_nthreads(nprocs: int, plugin: str | None = None) -> int:
    """fMRIPrep's default threads per process: ``min(nprocs - 1, 8)``, ``nprocs`` when there
    is one CPU or when the nodes run one at a time (the ``Linear`` plugin)."""
    if plugin == "Linear" or nprocs <= 1:
        return max(1, nprocs)
    return min(nprocs - 1, MAX_OMP_NTHREADS)


def node_threads(nprocs: int, omp_nthreads: int, side_by_side: int = 1) -> int:
    """Threads of a node that runs alone (``side_by_side=1``: all the run's CPUs, or
    ``omp_nthreads`` if that is more) or beside ``side_by_side - 1`` nodes of its kind while
    nothing else runs (the feature extraction of each model: the CPUs shared among them)."""
    if side_by_side <= 1:
        return max(nprocs, omp_nthreads, 1)
    return max(1, nprocs // side_by_side)


def resolve_resources(
    nprocs: int | None,
    omp_nthreads: int | None,
    mem_gb: float | None,
    plugin: str | None = None,
) -> tuple[int, int, float | None]:
    """The run's ``(nprocs, omp_nthreads, mem_gb)``: given values kept, the others the
    machine's (:func:`available_cpus`, :func:`default_omp_nthreads`,
    :func:`available_memory_gb`)."""
    nprocs = nprocs if nprocs is not None else available_cpus()
    if omp_nthreads is None:
        omp_nthreads = default_omp_nthreads(nprocs, plugin)
    if mem_gb is None:
        mem_gb = available_memory_gb()
    return nprocs, omp_nthreads, mem_gb


def describe_cpus() -> str:
    """What ``--nprocs`` and ``--omp-nthreads`` default to on this machine (for ``--help``)."""
    n = available_cpus()
    return f"{n} here, so --omp-nthreads defaults to {default_omp_nthreads(n)}"


def describe_memory() -> str:
    """What ``--mem`` defaults to on this machine (for ``--help``)."""
    gb = available_memory_gb()
    return "unknown here (Nipype then takes 90% of the total)" if gb is None else f"{gb:g} GB here"
