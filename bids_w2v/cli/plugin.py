"""Nipype execution plugins: ``--use-plugin FILE`` (fMRIPrep's format) and the default choice.

A plugin file is YAML (JSON is YAML too), read with :func:`yaml.safe_load`, which builds plain
mappings, lists, strings and numbers only and never executes code::

    plugin: SLURM
    plugin_args:
      sbatch_args: --partition=normal --time=02:00:00
      max_jobs: 20

As in fMRIPrep, ``--nprocs`` and ``--mem`` fill ``n_procs`` and ``memory_gb`` of the MultiProc
plugins; every other plugin receives ``plugin_args`` as written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bids_w2v.errors import InputError

MULTIPROC = ("MultiProc", "LegacyMultiProc")


def available_plugins() -> list[str]:
    """Names Nipype's ``Workflow.run(plugin=...)`` accepts (``MultiProc``, ``SLURM``, ...)."""
    from nipype.pipeline import plugins

    return sorted(
        name.removesuffix("Plugin")
        for name in dir(plugins)
        if name.endswith("Plugin") and name != "Plugin"
    )


def load_plugin_file(path: Path) -> tuple[str, dict[str, Any]]:
    """Read a ``--use-plugin`` file.

    Parameters
    ----------
    path : Path
        YAML file with a ``plugin`` name and an optional ``plugin_args`` mapping.

    Returns
    -------
    tuple of (str, dict)
        The plugin name and its arguments.

    Raises
    ------
    InputError
        The file is missing, not YAML, or does not name a known Nipype plugin.
    """
    import yaml

    path = Path(path)
    how = (
        "Write e.g. 'plugin: SLURM' and 'plugin_args: {sbatch_args: --time=01:00:00}' "
        "(YAML, as fMRIPrep's --use-plugin)."
    )
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(
            f"--use-plugin file {path} cannot be read ({exc.strerror or exc}). Give the path "
            f"of an existing YAML file. {how}"
        ) from None
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InputError(
            f"--use-plugin file {path} is not valid YAML{line}: "
            f"{getattr(exc, 'problem', None) or exc}. {how}"
        ) from None
    if not isinstance(settings, Mapping) or not isinstance(settings.get("plugin"), str):
        raise InputError(f"--use-plugin file {path} does not name a plugin. {how}")
    known = available_plugins()
    plugin = settings["plugin"].strip().removesuffix("Plugin")
    matches = [name for name in known if name.lower() == plugin.lower()]
    if not matches:
        raise InputError(
            f"--use-plugin file {path} names the plugin {settings['plugin']!r}, which Nipype "
            f"does not have. Use one of: {', '.join(known)}."
        )
    plugin_args = settings.get("plugin_args") or {}
    if not isinstance(plugin_args, Mapping):
        raise InputError(
            f"--use-plugin file {path}: 'plugin_args' must be a mapping of argument names to "
            f"values, not {type(plugin_args).__name__}. {how}"
        )
    unknown = sorted(set(settings) - {"plugin", "plugin_args"})
    if unknown:
        raise InputError(
            f"--use-plugin file {path} has unknown keys {', '.join(map(repr, unknown))}; only "
            f"'plugin' and 'plugin_args' are read. {how}"
        )
    return matches[0], dict(plugin_args)


def plugin_settings(
    plugin: str | None,
    plugin_args: Mapping[str, Any],
    *,
    nprocs: int,
    mem_gb: float | None,
) -> tuple[str, dict[str, Any]]:
    """The plugin and arguments ``Workflow.run`` receives.

    Parameters
    ----------
    plugin : str or None
        From ``--use-plugin`` (``None``: ``Linear`` with one process, ``MultiProc`` otherwise).
    plugin_args : mapping
        From ``--use-plugin``.
    nprocs : int
        ``--nprocs``.
    mem_gb : float or None
        ``--mem``, in GB.

    Returns
    -------
    tuple of (str, dict)
        Plugin name and arguments, with ``n_procs``/``memory_gb`` set for MultiProc (and
        ``mp_context: spawn`` unless the plugin file names one).
    """
    args = dict(plugin_args)
    if plugin is None:
        plugin = "MultiProc" if nprocs > 1 else "Linear"
    if plugin in MULTIPROC:
        args["n_procs"] = nprocs
        args.setdefault("raise_insufficient", False)
        if plugin == "MultiProc":
            # fresh worker processes: a worker forked from a process whose OpenMP threads ran
            # (torch in a test or notebook) can hang at its first parallel region, which the
            # extraction, on all --nprocs threads, reaches; spawned workers also see the
            # environment of this run (the progress folder)
            args.setdefault("mp_context", "spawn")
        if mem_gb:
            args["memory_gb"] = mem_gb
    return plugin, args


def add_sbatch_resources(wf) -> None:
    """Ask SLURM, per node, for the memory and CPUs the node declares.

    Every node submitted by Nipype's SLURM plugin gets ``--mem`` (from ``mem_gb``) and
    ``--cpus-per-task`` (from ``n_procs``) appended to the plugin's ``sbatch_args`` (a later
    option wins in ``sbatch``). Nodes that already have ``sbatch_args`` keep them.

    Parameters
    ----------
    wf : nipype Workflow
        The graph, modified in place.
    """
    for name in wf.list_node_names():
        node = wf.get_node(name)
        if node is None or "sbatch_args" in node.plugin_args:
            continue
        mem_mb = max(1, math.ceil(node.mem_gb * 1024))
        node.plugin_args = {
            **node.plugin_args,
            "sbatch_args": f"--mem={mem_mb}M --cpus-per-task={max(1, node.n_procs)}",
        }


def write_workflow_graph(wf) -> list[Path]:
    """Write ``--write-graph``'s files: the graph in Graphviz format, rendered when possible.

    Parameters
    ----------
    wf : nipype Workflow
        The graph; files go to ``<base_dir>/<name>/`` (the work directory).

    Returns
    -------
    list of Path
        ``graph.dot`` (every workflow and node by name, colored by sub-workflow) and
        ``graph.svg`` when Graphviz's ``dot`` is installed.
    """
    import shutil

    written = [Path(wf.write_graph("graph.dot", graph2use="colored", format="dot"))]
    if shutil.which("dot"):
        written.append(Path(wf.write_graph("graph.dot", graph2use="colored", format="svg")))
    return written
