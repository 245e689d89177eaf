"""Build a run's design matrices: each layer's activations placed at the stimulus onsets,
HRF-convolved, sampled at the scan times, restricted to the scans kept after cleaning.

The convolution runs on the run's full scan grid (every volume of the BOLD file, from its first
scan), and only then are the rows of the dropped scans (non-steady-state, dummy, trimmed,
scrubbed) removed, so the response to sound heard during a dropped scan still reaches the kept
scans that follow it, and the design rows stay aligned with the cleaned BOLD rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bids_w2v.features.hrf import convolve_features, scan_times
from bids_w2v.inputs.events import Presentation


def build_run_design(
    presentations: Sequence[Presentation],
    features: Mapping[Path, object],
    layers: Sequence[str],
    *,
    n_scans: int,
    tr: float,
    kept: np.ndarray | None = None,
    hrf_model: str = "glover",
    oversampling: int = 50,
    slice_time_ref: float = 0.0,
    fir_delays: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """Design matrix of every layer for one run.

    Parameters
    ----------
    presentations : sequence of Presentation
        The run's audio presentations (onset, stimulus file).
    features : mapping
        Stimulus path -> extracted ``Features`` (``.layers`` dict and ``.frame_rate``).
    layers : sequence of str
        Layers to build.
    n_scans : int
        Number of volumes of the run.
    tr : float
        Repetition time (seconds).
    kept : ndarray of int, optional
        Scans kept after cleaning (the BOLD sample mask); all by default.
    hrf_model, oversampling, slice_time_ref, fir_delays
        HRF convolution settings (nilearn's; :func:`bids_w2v.features.hrf.convolve_features`).

    Returns
    -------
    dict
        Layer name -> array (n_kept, n_features * n_regressors), float32 (one block of columns
        per HRF kernel: the time derivative or each FIR delay).
    """
    frame_times = scan_times(n_scans, tr, slice_time_ref)
    rates = {features[Path(p.stim_file)].frame_rate for p in presentations}
    if len(rates) != 1:
        raise ValueError(f"stimuli of one run have different frame rates: {sorted(rates)}")
    frame_rate = rates.pop()
    onsets = [p.onset for p in presentations]
    kept_idx = np.arange(n_scans) if kept is None else np.asarray(kept, dtype=int)
    if kept_idx.size and (kept_idx.min() < 0 or kept_idx.max() >= n_scans):
        raise ValueError(f"kept scans outside the run's {n_scans} scans")
    design = {}
    for layer in layers:
        per_stim = [features[Path(p.stim_file)].layers[layer] for p in presentations]
        full = convolve_features(
            per_stim,
            onsets,
            frame_rate,
            frame_times,
            hrf_model=hrf_model,
            oversampling=oversampling,
            fir_delays=fir_delays,
        )
        design[layer] = full[kept_idx]
    return design
