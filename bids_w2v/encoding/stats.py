"""Group statistics of brain scores (pure numpy)."""

from __future__ import annotations

import numpy as np


def circular_mean_layer(peaks: np.ndarray, n_layers: int) -> np.ndarray:
    """Combine per-subject peak layers by the paper's circular mean.

    ``k* = angle((1/N) sum_s exp(2 i pi k_s / (K + 1)))`` mapped back to a layer index in
    ``[0, K + 1)`` (Millet, Caucheteux et al. 2022).

    Parameters
    ----------
    peaks : ndarray, shape (n_subjects, n_voxels)
        Per-subject peak layer index (NaN where undefined; ignored).
    n_layers : int
        K, the number of layers compared.

    Returns
    -------
    ndarray, shape (n_voxels,)
        Circular-mean layer index (NaN where no subject has a peak).
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    period = n_layers + 1
    phasors = np.exp(2j * np.pi * np.nan_to_num(peaks) / period)
    phasors[np.isnan(peaks)] = 0
    count = np.sum(~np.isnan(peaks), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = phasors.sum(axis=0) / count
    out = np.mod(np.angle(mean) * period / (2 * np.pi), period)
    out[count == 0] = np.nan
    return out


def mean_across_subjects(maps: np.ndarray) -> np.ndarray:
    """Mean over subjects (axis 0), NaN where any subject is NaN (outside its mask)."""
    maps = np.asarray(maps, dtype=np.float64)
    out = maps.mean(axis=0)
    out[np.isnan(maps).any(axis=0)] = np.nan
    return out
