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


#: how far (in layers) the recovered peak may be from the planted layer: the simulated truth
#: is built independently of the analysis (bids_w2v.testing.truth), and neighbouring conv
#: blocks (or transformer blocks) of a small random network carry similar representations
PEAK_TOLERANCE = 2


def assert_recovered(stack, index: int, planted, null, n_conv: int, *, label="") -> None:
    """Recovery of one planted layer from brain scores ``stack`` (n_layers, n_voxels).

    The planted voxels' mean brain score at the planted layer is above chance (the 95th
    percentile of the null voxels' scores at that layer), and the layer profile of their mean
    score peaks within ``PEAK_TOLERANCE`` layers of ``index`` in the same block (conv or
    transformer) or, where another block ties, the planted layer scores within 10 % of the
    peak: in the tiny random network the transformer blocks (a projection of conv6) explain a
    conv1 read-out almost as well as conv1 does. (Per voxel, the peak is noisy at these signal
    levels: the demo's table reports it.)
    """
    import numpy as np

    scores = stack[:, planted]
    chance = np.nanquantile(stack[index][null], 0.95)
    assert np.nanmean(scores[index]) > chance, (label, np.nanmean(scores[index]), chance)
    profile = np.nanmean(scores, axis=1)
    best = int(np.argmax(profile))
    near = abs(best - index) <= PEAK_TOLERANCE and (best < n_conv) == (index < n_conv)
    assert near or profile[index] >= 0.9 * profile[best], (label, index, np.round(profile, 3))
