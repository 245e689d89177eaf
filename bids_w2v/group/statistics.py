"""Group statistics of brain scores (pure numpy)."""

from __future__ import annotations

import warnings

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


def circular_mean_position(peaks: np.ndarray, layer_indices) -> np.ndarray:
    """Circular mean of per-subject peak layers given as depth indices (``LayerIndex``).

    The peaks are first turned into positions ``0..K-1`` among the layers compared (so that a
    subset such as ``--layers conv0,transformer6`` is handled), combined by
    :func:`circular_mean_layer`, and mapped back to the depth-index scale: for contiguous indices
    (the default, every layer) the result is ``indices[0] + position`` (continuous), otherwise
    the position is rounded to the nearest layer compared.

    Parameters
    ----------
    peaks : ndarray, shape (n_subjects, n_voxels)
        Per-subject peak ``LayerIndex`` (NaN where undefined).
    layer_indices : sequence of int
        Depth indices of the layers compared, in depth order.

    Returns
    -------
    ndarray, shape (n_voxels,)
    """
    indices = np.asarray(layer_indices, dtype=np.float64)
    peaks = np.asarray(peaks, dtype=np.float64)
    position = np.full(peaks.shape, np.nan)
    for pos, index in enumerate(indices):
        position[peaks == index] = pos
    circ = circular_mean_layer(position, len(indices))
    if np.all(np.diff(indices) == 1):
        return indices[0] + circ
    nearest = np.mod(np.rint(circ), len(indices) + 1)
    nearest[nearest == len(indices)] = 0  # the empty slot between last and first: wrap to first
    out = np.full(circ.shape, np.nan)
    ok = np.isfinite(circ)
    out[ok] = indices[nearest[ok].astype(int)]
    return out


def wilcoxon_against_zero(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilcoxon signed-rank test of each voxel's scores across subjects against 0.

    Parameters
    ----------
    maps : ndarray, shape (n_subjects, n_voxels)
        One score (or paired difference) per subject and voxel; voxels with a NaN in any
        subject get NaN.

    Returns
    -------
    statistic, pvalue : ndarray, shape (n_voxels,)
        ``scipy.stats.wilcoxon`` (vectorised over voxels) for the finite voxels; NaN elsewhere.
        Voxels whose values are all zero get p = 1.
    """
    from scipy import stats

    maps = np.asarray(maps, dtype=np.float64)
    stat = np.full(maps.shape[1], np.nan)
    pval = np.full(maps.shape[1], np.nan)
    ok = np.isfinite(maps).all(axis=0)
    zero = ok & np.all(maps == 0, axis=0)
    pval[zero] = 1.0
    test = np.flatnonzero(ok & ~zero)
    # scipy chooses between its exact and asymptotic tests once for the whole array (exact for
    # at most 50 participants without ties or zeros anywhere); above 50 every voxel is tested
    # asymptotically on its own, so voxel blocks give the same values with a fraction of the
    # memory (scipy's ranks and temporaries of 300 participants x 81,924 vertices: > 2 GB)
    step = len(test) if maps.shape[0] <= 50 else max(1, WILCOXON_BLOCK // maps.shape[0])
    for start in range(0, len(test), max(step, 1)):
        block = test[start : start + step]
        res = stats.wilcoxon(maps[:, block], axis=0)
        stat[block], pval[block] = res.statistic, res.pvalue
    return stat, pval


#: values (participants x voxels) per block of the Wilcoxon test above 50 participants
WILCOXON_BLOCK = 2_000_000


def fdr_bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q) over the finite entries (NaN kept).

    Parameters
    ----------
    pvalues : ndarray
        p-values, any shape.

    Returns
    -------
    ndarray
        q-values (``scipy.stats.false_discovery_control``, method ``bh``), same shape.
    """
    from scipy import stats

    p = np.asarray(pvalues, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def min_wilcoxon_p(n_subjects: int) -> float:
    """Smallest two-sided p-value an exact Wilcoxon test on ``n_subjects`` can give."""
    return min(1.0, 2.0 / 2.0**n_subjects)


def sem_across_subjects(values: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0 (ddof 1; NaN with fewer than 2 finite values)."""
    values = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.sqrt(
            np.nansum((values - np.nanmean(values, axis=0)) ** 2, axis=0) / np.maximum(n - 1, 0)
        )
        out = sd / np.sqrt(n)
    return np.where(n >= 2, out, np.nan)


#: tests of the group maps (``--group-test``)
GROUP_TESTS = ("wilcoxon", "permutation")


def sign_flip_fwe(
    maps: np.ndarray, n_permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-sample sign-flip permutation test with max-statistic FWE correction, per voxel.

    ``nilearn.mass_univariate.permuted_ols`` with an intercept-only design (the tested
    variate is a column of ones, so permutations flip the signs of the participants' values),
    two-sided, seeded.

    Parameters
    ----------
    maps : ndarray, shape (n_subjects, n_voxels)
        One score (or paired difference) per subject and voxel; voxels with a NaN in any
        subject get NaN and take no part in the maximum.
    n_permutations : int
        Random sign flips.
    seed : int
        Random state of the flips.

    Returns
    -------
    t, p_fwe : ndarray, shape (n_voxels,)
        One-sample t statistic and its FWE-corrected p-value (fraction of permutations, the
        original one included, whose maximum |t| over voxels reaches the voxel's |t|).
    """
    from nilearn.mass_univariate import permuted_ols

    maps = np.asarray(maps, dtype=np.float64)
    t = np.full(maps.shape[1], np.nan)
    p = np.full(maps.shape[1], np.nan)
    ok = np.isfinite(maps).all(axis=0)
    constant = ok & np.all(maps == maps[:1], axis=0)
    p[constant] = 1.0
    test = ok & ~constant
    if test.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = permuted_ols(
                np.ones((maps.shape[0], 1)),
                maps[:, test],
                model_intercept=False,
                n_perm=n_permutations,
                two_sided_test=True,
                random_state=seed,
                n_jobs=1,
                verbose=0,
                output_type="dict",
            )
        t[test] = out["t"][0]
        p[test] = 10.0 ** -out["logp_max_t"][0]
    return t, p


class RunningPeak:
    """Per-voxel peak layer of layers given one at a time: equal to
    :func:`bids_w2v.outputs.maps.peak_layer` of the stacked layers (first of equal maxima;
    NaN where no layer is finite) without holding them all.

    Parameters
    ----------
    layer_indices : sequence of int
        Depth index of each layer, in the order :meth:`add` receives them.
    """

    def __init__(self, layer_indices) -> None:
        self.indices = np.asarray(layer_indices, dtype=np.float64)
        self.count = 0
        self.best = self.position = self.any_finite = None

    def add(self, scores: np.ndarray) -> None:
        """The next layer's scores (any shape, the same for every layer)."""
        finite = np.isfinite(scores)
        values = np.where(finite, scores, -np.inf)
        if self.best is None:
            self.best, self.any_finite = values, finite
            self.position = np.zeros(values.shape, dtype=np.int16)
        else:
            better = values > self.best
            self.best[better] = values[better]
            self.position[better] = self.count
            self.any_finite |= finite
        self.count += 1

    def peaks(self) -> np.ndarray:
        """The depth index of each voxel's best layer so far (float64; NaN if none finite)."""
        out = self.indices[self.position]
        out[~self.any_finite] = np.nan
        return out
