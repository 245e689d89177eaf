"""Helpers shared by the integration tests."""

from __future__ import annotations


def fit_started(work) -> bool:
    """Whether a layer fit has finished in WORK_DIR (the graph's folder only: the feature cache
    beside it renames temporary folders while it is scanned)."""
    try:
        return any((work / "bids_w2v_wf").glob("**/fit_layer/mapflow/*/encoding_*.npz"))
    except OSError:  # a folder renamed during the scan
        return False


#: maps of one participant of the shared simulated dataset with the tiny model: 9 layers x
#: (stat-r, and --participant-stats' stat-p, stat-q, stat-rthresh), the peak layer, the alphas
MAPS_PER_PARTICIPANT = 9 * 4 + 2
