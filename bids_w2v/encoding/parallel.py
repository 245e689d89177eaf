"""Voxel units fitted side by side on CPU threads.

Most of a fit's work after the per-fold SVD is per voxel: the projections, the bounds of the
exact search, the element-wise passes of the inner criterion, the refit and Pearson r. numpy's
element-wise operations run on one thread, so with BLAS alone on the node's threads about half
of the fit used one core. Here a voxel chunk is cut into units of :data:`UNIT` voxels, fitted
side by side on ``n_threads`` Python threads (numpy releases the GIL in its loops), each with
single-threaded BLAS. The cut does not depend on the thread count and every unit runs the same
single-threaded arithmetic, so the results do not depend on ``n_threads``. The torch backend
on CPUs does the same with ``torch.set_num_threads(1)`` inside the pool; on GPUs a chunk is one
unit (the device parallelises it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from threadpoolctl import threadpool_info

from .backends import Ops

#: Voxels per unit on CPUs: large enough for the products to run at the BLAS
#: rate, small enough for a 20,000-voxel chunk to keep up to ~8 threads busy.
UNIT = 1024

T = TypeVar("T")


def blas_threads() -> int:
    """Threads BLAS may use now (the limit a caller set with ``threadpoolctl``), at least 1."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max([1, *counts])


def resolve_threads(n_threads: int | None) -> int:
    """``n_threads`` checked (a positive integer), or :func:`blas_threads` when ``None``."""
    if n_threads is None:
        return blas_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}.")
    return n_threads


def units(ops: Ops, n_voxels: int) -> list[slice]:
    """Slices of a chunk of ``n_voxels``: :data:`UNIT`-wide on CPUs, the whole chunk on GPUs."""
    width = UNIT if ops.cpu else max(n_voxels, 1)
    return [slice(b0, min(b0 + width, n_voxels)) for b0 in range(0, n_voxels, width)]


class UnitPool:
    """Map a function over units on ``n_threads`` threads (serially for one thread)."""

    def __init__(self, executor: ThreadPoolExecutor | None) -> None:
        self.executor = executor

    def map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> Iterator[T]:
        """``fn`` over ``items``, in order (lazily when serial: consume the result)."""
        if self.executor is None or len(items) < 2:
            return map(fn, items)
        return self.executor.map(fn, items)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future:
        """``fn(*args)`` queued on the pool (run now when serial); ``.result()`` waits."""
        if self.executor is not None:
            return self.executor.submit(fn, *args)
        future: Future = Future()
        future.set_result(fn(*args))
        return future


@contextmanager
def unit_pool(ops: Ops, n_threads: int) -> Iterator[UnitPool]:
    """A :class:`UnitPool` of ``n_threads`` on CPUs, inside which BLAS (numpy) or torch is
    single-threaded (each thread is a core); serial on GPUs. Thread limits are restored."""
    if not ops.cpu:
        yield UnitPool(None)
        return
    with ops.single_threaded():
        if n_threads == 1:
            yield UnitPool(None)
            return
        with ThreadPoolExecutor(max_workers=n_threads) as executor:
            yield UnitPool(executor)
