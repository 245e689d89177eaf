"""The work directory: Nipype's cache and every temporary file of a run, kept private."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE = 0o700


@contextlib.contextmanager
def private_tmpdir(work_dir: Path) -> Iterator[Path]:
    """Send temporary files to ``WORK_DIR/tmp`` (mode 0700) for the duration of a run.

    A work directory created here gets mode 0700 (one given by the user keeps its mode, so a
    shared cache stays shared); its ``tmp/`` subfolder is always 0700. ``TMPDIR`` (inherited by
    Nipype's worker processes) and :data:`tempfile.tempdir` point there inside the context and
    are restored on exit, so libraries that write scratch files (nilearn, matplotlib, torch) never
    use a world-readable ``/tmp`` on a shared cluster node.

    Parameters
    ----------
    work_dir : Path
        The run's ``--work-dir``.

    Yields
    ------
    Path
        The private temporary folder.
    """
    work_dir = Path(work_dir)
    if not work_dir.exists():
        work_dir.mkdir(mode=PRIVATE, parents=True)
    tmp = work_dir / "tmp"
    tmp.mkdir(mode=PRIVATE, exist_ok=True)
    os.chmod(tmp, PRIVATE)
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    try:
        yield tmp
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
