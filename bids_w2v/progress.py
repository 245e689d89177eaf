"""Progress of the long steps (feature extraction, fits), seen from wherever they run.

Nipype's MultiProc plugin runs each node in a worker process, so a bar drawn there would
collide with the other workers' on the same terminal. Instead, while ``bids-w2v`` runs a graph
it names a folder in the environment variable ``BIDS_W2V_PROGRESS_DIR``, and every
:class:`Progress` of a node writes its state there (one small JSON file, replaced atomically
at most twice a second, removed when the step ends); the command's own process reads the folder
and draws one bar per running step, or writes one line per step when its output is not a
terminal (:mod:`bids_w2v.cli.progress`). Outside ``bids-w2v`` (the Python API, benchmarks) a
:class:`Progress` is a tqdm bar on stderr when enabled, and silent otherwise.

Science-free: used by :mod:`bids_w2v.features` and the interfaces; no Nipype.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

PROGRESS_DIR_ENV = "BIDS_W2V_PROGRESS_DIR"
#: seconds between two writes of a step's state
MIN_INTERVAL = 0.5
_ids = itertools.count()

__all__ = ["MIN_INTERVAL", "PROGRESS_DIR_ENV", "Progress", "StepProgress", "read_states"]


class Progress:
    """How far one step is, in ``unit`` (seconds of audio, fold x chunk steps...).

    Parameters
    ----------
    total : float
        Amount of work of the step.
    label : str
        What the step is (shown before its bar).
    unit : str
        Unit of ``total``.
    enabled : bool
        Outside a ``bids-w2v`` run (no ``BIDS_W2V_PROGRESS_DIR``): draw a tqdm bar on stderr.
    folder : path, optional
        Where to write the state (default: ``$BIDS_W2V_PROGRESS_DIR``; ``""``: none).
    """

    def __init__(
        self,
        total: float,
        label: str,
        unit: str = "",
        *,
        enabled: bool = True,
        folder: str | os.PathLike[str] | None = None,
    ) -> None:
        self.total = max(float(total), 0.0)
        self.label, self.unit = label, unit
        self.done = 0.0
        self.started = time.time()
        self._written = 0.0
        self._bar = None
        folder = os.environ.get(PROGRESS_DIR_ENV, "") if folder is None else folder
        self._path = None
        if folder and Path(folder).is_dir():
            self._path = Path(folder) / f"{os.getpid()}-{next(_ids)}.json"
            self._write()
        elif enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=round(self.total, 2),
                desc=label,
                unit=unit or "it",
                file=sys.stderr,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}"
                "{postfix}]",
            )

    def _write(self) -> None:
        state = {
            "label": self.label,
            "unit": self.unit,
            "total": self.total,
            "done": self.done,
            "started": self.started,
            "pid": os.getpid(),
        }
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        try:
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self._path)
        except OSError:  # progress is never worth a failure
            self._path = None
        self._written = time.monotonic()

    def advance_to(self, done: float) -> None:
        """Mark the step done up to ``done`` (never moves backwards, never past ``total``)."""
        done = min(float(done), self.total)
        if done <= self.done:
            return
        if self._bar is not None:
            self._bar.update(done - self.done)
        self.done = done
        if self._path is not None and (
            done >= self.total or time.monotonic() - self._written >= MIN_INTERVAL
        ):
            self._write()

    def advance(self, amount: float = 1.0) -> None:
        """Mark ``amount`` more of the step done."""
        self.advance_to(self.done + amount)

    def offset(self, start: float) -> _Offset:
        """A view of this step whose ``advance_to(x)`` marks ``start + x`` done (one part of
        the step, e.g. one stimulus of an extraction); closing it closes nothing."""
        return _Offset(self, start)

    def set_postfix_str(self, text: str) -> None:
        """Text after the bar (tqdm only)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        """End the step: remove its state, close its bar."""
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Offset:
    """Part of a :class:`Progress` that starts at ``start`` (see :meth:`Progress.offset`)."""

    def __init__(self, parent: Progress, start: float) -> None:
        self.parent, self.start = parent, float(start)

    def advance_to(self, done: float) -> None:
        self.parent.advance_to(self.start + float(done))

    def set_postfix_str(self, text: str) -> None:
        self.parent.set_postfix_str(text)

    def close(self) -> None:
        """Closing a part leaves the step open."""


class StepProgress:
    """A callback ``(done, total)`` (as :func:`bids_w2v.encoding.cross_validated_scores` calls
    it) feeding a :class:`Progress` that starts at the first call; a context manager."""

    def __init__(self, label: str, unit: str = "steps", *, enabled: bool = False) -> None:
        self.label, self.unit, self.enabled = label, unit, enabled
        self.progress: Progress | None = None

    def __call__(self, done: float, total: float) -> None:
        if self.progress is None:
            self.progress = Progress(total, self.label, self.unit, enabled=self.enabled)
        self.progress.advance_to(done)

    def close(self) -> None:
        """End the step."""
        if self.progress is not None:
            self.progress.close()

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_states(folder: str | os.PathLike[str]) -> dict[str, dict]:
    """The states of the running steps in a progress folder, by file name.

    Files being replaced or removed while reading are skipped.
    """
    states = {}
    try:
        paths = sorted(Path(folder).glob("*.json"))
    except OSError:
        return states
    for path in paths:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and {"label", "total", "done", "started"} <= set(state):
            states[path.name] = state
    return states
