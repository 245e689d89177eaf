"""Helpers shared by the integration tests."""

from __future__ import annotations


def fit_started(work) -> bool:
    """Whether a layer fit has finished in WORK_DIR (the graph's folder only: the feature cache
    beside it renames temporary folders while it is scanned)."""
    try:
        return any((work / "bids_w2v_wf").glob("**/fit_layer/mapflow/*/encoding_*.npz"))
    except OSError:  # a folder renamed during the scan
        return False
