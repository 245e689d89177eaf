"""What ``bids-w2v`` shows while its graph runs: nodes done of total, and the long steps.

The command's process counts the nodes through Nipype's ``status_callback`` (every plugin but
the ``*Graph`` ones calls it), and reads the state of the long steps (feature extraction in
seconds of audio, fits in outer folds x voxel chunks) from the progress folder that the nodes,
in their worker processes, write to (:mod:`bids_w2v.progress`). On a terminal it draws a bar of
the nodes and one bar per running step, with its rate and time left; otherwise (a SLURM log,
a pipe) it writes one line per node done and one per tenth of each step.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from bids_w2v.progress import PROGRESS_DIR_ENV, read_states

#: seconds between two reads of the progress folder
POLL_INTERVAL = 0.5

__all__ = ["NodeCallbacks", "RunProgress", "count_nodes", "node_label"]


def count_nodes(wf) -> int:
    """The nodes Nipype runs for a graph: all but its identity nodes (which it removes), a
    MapNode counting once."""
    from nipype.interfaces.utility import IdentityInterface

    count = 0
    for name in wf.list_node_names():
        node = wf.get_node(name)
        if (
            isinstance(node.interface, IdentityInterface)
            and getattr(node, "iterables", None) is None
        ):
            continue
        count += 1
    return count


def node_label(node) -> str:
    """A node's name without the top workflow and the ``_wf`` suffixes; the subnode of a
    MapNode as ``name[i]`` (``sub_01 model_x fit_layer[3]``)."""
    parts = str(getattr(node, "fullname", node)).split(".")[1:] or [str(node)]
    parts = [p[:-3] if p.endswith("_wf") else p for p in parts]
    last = parts[-1]
    if last.startswith("_"):
        stem = last.rstrip("0123456789")
        if stem != last:
            last = f"{stem[1:]}[{last[len(stem) :]}]"
            if len(parts) > 1 and parts[-2] == stem[1:]:  # hierarchy repeats the MapNode
                parts = parts[:-1]
    return " ".join([*parts[:-1], last])


def _interval(seconds: float) -> str:
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def step_line(state: dict, now: float) -> str:
    """One line for a step's state: percentage, amount, elapsed, time left and rate."""
    total, done = float(state["total"]), float(state["done"])
    unit = state.get("unit", "")
    elapsed = max(now - float(state["started"]), 1e-9)
    rate = done / elapsed
    pct = 100.0 * done / total if total > 0 else 100.0
    left = (total - done) / rate if rate > 0 else float("nan")
    left_text = _interval(left) if left == left else "?"
    return (
        f"{state['label']}: {pct:3.0f}% ({done:.0f}/{total:.0f} {unit}) {_interval(elapsed)} "
        f"elapsed, {left_text} left, {rate:.3g} {unit}/s"
    )


class RunProgress:
    """Progress display of one graph run; also its Nipype ``status_callback``.

    Parameters
    ----------
    total : int
        Nodes of the graph (:func:`count_nodes`).
    work_dir : Path
        Where the progress folder is made (removed by :meth:`close`).
    stream : file, optional
        Where to write (default ``sys.stderr``).
    tty : bool, optional
        Draw bars (default: whether ``stream`` is a terminal); lines otherwise.
    """

    def __init__(
        self,
        total: int,
        work_dir: Path,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self.total, self.done = total, 0
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.tty = bool(isatty()) if tty is None else tty
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="progress-", dir=work_dir))
        self.interval = interval
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._tenths: dict[str, int] = {}
        self._bars: dict[str, object] = {}
        self._nodes_bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous_env: str | None = None

    # -- the nodes, from Nipype's status_callback (the command's main thread) --
    def __call__(self, node, status: str) -> None:
        name = node_label(node)
        now = time.time()
        with self._lock:
            if status == "start":
                self._started[name] = now
                return
            started = self._started.pop(name, None)
            subnode = str(getattr(node, "name", "")).startswith("_")
            if not subnode:
                self.done += 1
            done, total = self.done, self.total
        took = "" if started is None else f" in {_interval(now - started)}"
        what = "failed" if status == "exception" else "done"
        if not self.tty:
            self._write(f"bids-w2v: [{done}/{total} nodes] {name} {what}{took}")
        elif status == "exception":
            self._write(f"bids-w2v: {name} failed{took}")

    def __reduce__(self):  # Nipype copies plugin_args into MapNodes: the copy does nothing
        return (_inert, ())

    def _write(self, line: str) -> None:
        if self.tty and self._nodes_bar is not None:
            from tqdm.auto import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    # -- the steps, read from the progress folder (a thread of the command) --
    def poll(self) -> None:
        """Read the steps' states once and show them."""
        states = read_states(self.folder)
        now = time.time()
        if self.tty:
            self._draw(states, now)
            return
        for key in list(self._tenths):
            if key not in states:
                del self._tenths[key]
        for key, state in states.items():
            total = float(state["total"])
            tenth = int(10 * float(state["done"]) / total) if total > 0 else 10
            if tenth > self._tenths.get(key, 0) and tenth < 10:
                self._write(f"bids-w2v: {step_line(state, now)}")
            self._tenths[key] = max(tenth, self._tenths.get(key, 0))

    def _draw(self, states: dict[str, dict], now: float) -> None:
        from tqdm.auto import tqdm

        if self._nodes_bar is None:
            self._nodes_bar = tqdm(
                total=self.total, desc="bids-w2v", unit="node", file=self.stream, position=0
            )
        with self._lock:
            done = self.done
        self._nodes_bar.n = done
        self._nodes_bar.refresh()
        for key in list(self._bars):
            if key not in states:
                self._bars.pop(key).close()
        for key, state in states.items():
            bar = self._bars.get(key)
            if bar is None:
                bar = tqdm(
                    total=float(state["total"]),
                    desc=state["label"],
                    unit=state.get("unit") or "it",
                    file=self.stream,
                    position=self._free_position(),
                    leave=False,
                    smoothing=0,
                    bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} "
                    "[{elapsed}<{remaining}, {rate_fmt}]",
                )
                bar.start_t = float(state["started"])
                self._bars[key] = bar
            bar.n = float(state["done"])
            bar.refresh()

    def _free_position(self) -> int:
        used = {getattr(bar, "pos", 0) for bar in self._bars.values()}
        used = {abs(p) for p in used}
        return next(i for i in range(1, len(used) + 2) if i not in used)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # pragma: no cover - the display never stops the run
                pass

    def start(self) -> RunProgress:
        """Name the progress folder in the environment (the nodes' processes inherit it) and
        start reading it."""
        self._previous_env = os.environ.get(PROGRESS_DIR_ENV)
        os.environ[PROGRESS_DIR_ENV] = str(self.folder)
        self._thread = threading.Thread(target=self._loop, name="bids-w2v-progress", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop reading, close the bars, restore the environment, remove the folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._nodes_bar is not None:
            with self._lock:
                self._nodes_bar.n = self.done
            self._nodes_bar.close()
            self._nodes_bar = None
        if self._previous_env is None:
            os.environ.pop(PROGRESS_DIR_ENV, None)
        else:
            os.environ[PROGRESS_DIR_ENV] = self._previous_env
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RunProgress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _inert() -> NodeCallbacks:
    return NodeCallbacks()


class NodeCallbacks:
    """Several ``status_callback`` functions called in turn (pickles as its members do)."""

    def __init__(self, *callbacks) -> None:
        self.callbacks = tuple(c for c in callbacks if c is not None)

    def __call__(self, node, status: str) -> None:
        for callback in self.callbacks:
            callback(node, status)
