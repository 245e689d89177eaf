"""Heap reuse in the long nodes (glibc only; science-free, no Nipype).

glibc's ``malloc`` serves every block above its mmap threshold (which grows from 128 KiB to at
most 32 MiB) with a fresh ``mmap`` and unmaps it at ``free``: a node that allocates and frees
the same large buffers again and again (a model's activations, batch after batch of windows)
then faults every page in anew each time, which costs the kernel's time and, on virtual
machines that reclaim guest memory, the hypervisor's. :func:`retained_heap` keeps such blocks in
the heap while a node runs, so that the next batch reuses the pages of the last one, and at its
end hands the free memory back to the system (``malloc_trim``) and restores glibc's own
steady-state thresholds, so that the worker process does not keep the node's peak afterwards
and Nipype's memory accounting stays honest. ``benchmarks/extraction.py`` measures the effect.

The user's own settings win: where the environment sets glibc's malloc knobs (``MALLOC_*_``
variables or ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``), nothing is changed. Elsewhere
(macOS, musl) nothing is changed either.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["HELD", "RESTORED", "held_environment", "retained_heap", "user_tuned"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: while a node runs: blocks up to 1 GiB from the heap, free memory kept, the heap grown by
#: 64 MiB at a time
HELD = {_M_MMAP_THRESHOLD: 1 << 30, _M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 64 << 20}
#: afterwards: where glibc's dynamic thresholds settle once a large block has been freed
#: (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, a trim threshold of twice that) and its top pad
RESTORED = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_TOP_PAD: 128 << 10}
#: glibc's environment variables for the same parameters (read when a process starts)
_ENVIRONMENT_NAMES = {
    _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_",
    _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
    _M_TOP_PAD: "MALLOC_TOP_PAD_",
}


def held_environment() -> dict[str, str]:
    """:data:`HELD` as glibc's environment variables: a process started with them keeps its
    heap as a node does inside :func:`retained_heap` (for a benchmark's peer)."""
    return {_ENVIRONMENT_NAMES[param]: str(value) for param, value in HELD.items()}


def user_tuned(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment sets glibc's malloc knobs (then they are left alone)."""
    environ = os.environ if environ is None else environ
    if any(key.startswith("MALLOC_") and key.endswith("_") for key in environ):
        return True
    return "glibc.malloc." in environ.get("GLIBC_TUNABLES", "")


def _glibc():
    """This process' C library if it is glibc (``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - absent from musl
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


@contextmanager
def retained_heap(environ: Mapping[str, str] | None = None) -> Iterator[bool]:
    """Keep freed large blocks in the heap inside the block, hand them back at its end.

    Yields whether the settings were changed (glibc, and no malloc knob in ``environ``).
    """
    libc = None if user_tuned(environ) else _glibc()
    if libc is None:
        yield False
        return
    for param, value in HELD.items():
        libc.mallopt(param, value)
    try:
        yield True
    finally:
        for param, value in RESTORED.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)
