"""Running a Nipype graph: execution settings, plugins, and node failures as clean errors."""

from __future__ import annotations

import getpass
import os
import re
import time
from pathlib import Path

from bids_w2v import errors
from bids_w2v.errors import BidsW2VError


def worker_logging(work_dir, level: str) -> None:
    """Give Nipype's worker processes the same log level as this one.

    MultiProc workers are spawned (:func:`bids_w2v.cli.plugin.plugin_settings`), so they import
    Nipype afresh and read its configuration files, not this process's loggers: a
    ``nipype.cfg`` in ``WORK_DIR/nipype`` named by ``NIPYPE_CONFIG_DIR`` (inherited by the
    workers) carries the level.
    """
    folder = Path(work_dir) / "nipype"
    folder.mkdir(parents=True, exist_ok=True)
    levels = "".join(f"{kind}_level = {level}\n" for kind in ("workflow", "interface", "utils"))
    (folder / "nipype.cfg").write_text("[logging]\n" + levels)
    os.environ["NIPYPE_CONFIG_DIR"] = str(folder)


def run_workflow(wf, config, stop=None) -> None:
    """Run a Nipype graph; turn a node's bids-w2v error into a clean message.

    Parameters
    ----------
    wf : nipype Workflow
        The graph.
    config : RunConfig
        Plugin, resources, crash folder (``work_dir``), ``stop_on_first_crash``, verbosity.
    stop : callable, optional
        Status callback asked before every node starts (SIGTERM handling).
    """
    from nipype import logging as nipype_logging

    from bids_w2v.cli.plugin import add_sbatch_resources, plugin_settings, write_workflow_graph

    crash_dir = config.work_dir / "crash"
    # node failures are reported below from the crash file; Nipype's own log only with -v
    level = "CRITICAL" if config.verbosity <= 0 else {1: "WARNING"}.get(config.verbosity, "INFO")
    settings = {
        "execution": {"crashdump_dir": str(crash_dir), "crashfile_format": "txt",
                      "stop_on_first_crash": str(config.stop_on_first_crash).lower(),
                      "remove_unnecessary_outputs": "false",
                      "hash_method": "timestamp"},
        "monitoring": {"enabled": "false"},
    }  # fmt: skip
    for section, values in settings.items():  # the workflow's own copy, no global change
        wf.config.setdefault(section, {}).update(values)
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        nipype_logging.getLogger(name).setLevel(level)
    worker_logging(config.work_dir, level)
    plugin, plugin_args = plugin_settings(
        config.plugin, config.plugin_args, nprocs=config.nprocs, mem_gb=config.mem_gb
    )
    if plugin == "SLURM":  # each node asks for the memory and CPUs it declares
        add_sbatch_resources(wf)
    if plugin not in ("Linear", "MultiProc", "LegacyMultiProc"):  # batch plugins name jobs
        os.environ.setdefault("LOGNAME", getpass.getuser())  # with $LOGNAME
    if config.write_graph:
        for path in write_workflow_graph(wf):
            print(f"bids-w2v: workflow graph written to {path}", flush=True)
    progress = None
    if config.verbosity >= 0 and not plugin.endswith("Graph"):  # nodes done, long steps
        from bids_w2v.cli.progress import RunProgress, count_nodes

        progress = RunProgress(count_nodes(wf), config.work_dir).start()
    if (stop is not None or progress is not None) and not plugin.endswith("Graph"):
        from bids_w2v.cli.progress import NodeCallbacks

        plugin_args = {"status_callback": NodeCallbacks(stop, progress), **plugin_args}
    started = time.time()
    try:
        try:
            wf.run(plugin=plugin, plugin_args=plugin_args)
        finally:
            if progress is not None:
                progress.close()
    except Exception as exc:  # nipype wraps node failures in RuntimeError
        error = node_error(crash_dir, started)
        if error:
            raise error from None
        raise BidsW2VError(
            f"The workflow failed ({exc}). Crash reports are in {crash_dir}; re-run with -vv "
            "for Nipype's logs. Re-running with the same --work-dir resumes where it stopped."
        ) from None


def node_error(crash_dir: Path, since: float) -> BidsW2VError | None:
    """The bids-w2v error recorded in the newest crash file of this run, if any."""
    if not crash_dir.is_dir():
        return None
    files = sorted(
        (p for p in crash_dir.glob("crash-*") if p.stat().st_mtime >= since - 1),
        key=lambda p: p.stat().st_mtime,
    )
    classes = (
        errors.AudioError,
        errors.ModelError,
        errors.InputError,
        errors.OutputError,
        errors.BidsW2VError,
    )
    os_error = re.compile(r"(?:OSError|PermissionError): \[Errno \d+\] ([^:\n]+)(?:: '([^'\n]+)')?")
    for crash in reversed(files):
        text = crash.read_text(errors="replace")
        for cls in classes:
            marker = f"{cls.__name__}: "
            if marker in text:
                return cls(text.rsplit(marker, 1)[1].strip().splitlines()[0])
        found = os_error.findall(text)
        if found:  # a node could not write (full disk, permissions): the CLI's write message
            reason, filename = found[-1]
            return errors.write_error(filename or None, reason)
    return None
