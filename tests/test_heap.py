"""retained_heap: freed large blocks stay in the heap inside it (fewer page faults, memory held)
and go back to the system at its end; the user's malloc settings are left alone. Measured in a
fresh interpreter, so that this process' heap does not blur the counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bids_w2v.heap import _glibc, held_environment, retained_heap, user_tuned

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc only")

_CHILD = r"""
import json, resource, sys
import numpy as np
from bids_w2v.heap import retained_heap

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def faults(n=12, size=96 << 20):  # page faults of n allocate-touch-free cycles of 96 MiB
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        a = np.ones(size // 4, dtype=np.float32)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

out = {"plain": faults()}
before = rss()
with retained_heap(json.loads(sys.argv[1])) as changed:
    out["changed"] = changed
    out["held"] = faults()
    a = np.ones((256 << 20) // 4, dtype=np.float32)
    del a
    out["kept_mib"] = rss() - before
out["left_mib"] = rss() - before
out["after"] = faults()
print(json.dumps(out))
"""


def _child(environ: dict, process_env: dict | None = None) -> dict:
    """Run the measurement; ``environ`` goes to retained_heap, ``process_env`` is added to
    the child's own environment."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(environ)],
        check=True, capture_output=True, text=True, env={**os.environ, **(process_env or {})},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_blocks_are_reused_inside_and_returned_at_the_end():
    out = _child({})
    assert out["changed"]
    # a 96 MiB block is mmapped and unmapped each time by default: every cycle faults it in,
    # at least once per page (48 transparent huge pages of 2 MiB)
    assert out["plain"] >= 12 * 48
    # inside: the first cycle faults, the others reuse its pages
    assert out["held"] < out["plain"] / 4
    assert out["kept_mib"] > 200  # a freed 256 MiB block stays resident...
    assert out["left_mib"] < 64  # ...until the end, where it goes back to the system
    assert out["after"] > out["held"] * 4  # glibc's own thresholds again afterwards


def test_the_users_malloc_settings_win():
    assert user_tuned({"MALLOC_ARENA_MAX": "2"}) is False  # not a MALLOC_*_ knob
    assert user_tuned({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert user_tuned({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"})
    assert not user_tuned({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"})
    out = _child({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert out["changed"] is False
    assert out["kept_mib"] < 64
    assert out["held"] > out["plain"] / 4


def test_nothing_changes_where_the_environment_is_tuned_in_this_process():
    with retained_heap({"MALLOC_TOP_PAD_": "0"}) as changed:
        assert changed is False


def test_held_environment_starts_a_process_with_the_nodes_heap():
    default, held = _child({}), _child({}, process_env=held_environment())
    assert set(held_environment()) == {
        "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
    }  # fmt: skip
    # outside retained_heap, the variables alone keep the 96 MiB blocks in the heap
    assert held["plain"] < default["plain"] / 4
