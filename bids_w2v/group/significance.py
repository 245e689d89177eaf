"""Significance of group maps: the paper's Wilcoxon signed-rank test with Benjamini-Hochberg FDR
(``--group-test wilcoxon``) or a sign-flip permutation test with max-statistic FWE correction
(``--group-test permutation``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bids_w2v.group.statistics import (
    fdr_bh,
    min_wilcoxon_p,
    sign_flip_fwe,
    wilcoxon_against_zero,
)

if TYPE_CHECKING:
    from bids_w2v.group.maps import GroupWriter


@dataclass(frozen=True)
class GroupTest:
    """How the group maps are tested (``--group-test``, ``--n-permutations``,
    ``--permutation-seed``)."""

    test: str = "wilcoxon"
    n_permutations: int = 10000
    seed: int = 0


@dataclass(frozen=True)
class Significance:
    """The maps of one test: ``maps`` is ``(stat entity, values, sidecar fields)`` per map;
    ``corrected`` the corrected p-values thresholded at the level named ``level_key``."""

    test: str
    corrected: np.ndarray
    criterion: str
    level_key: str
    maps: list = field(default_factory=list)


def significance_maps(
    values: np.ndarray,
    fdr_q: float,
    notes: list[str],
    what: str,
    group_test: GroupTest = GroupTest(),
    tested: str = "across participants against 0",
) -> Significance | None:
    """Test each voxel over subjects (axis 0), or None with a note if too few.

    ``wilcoxon`` (the paper's): two-sided Wilcoxon signed-rank p (``stat-p``) and its
    Benjamini-Hochberg q over voxels (``stat-q``). ``permutation``: sign-flip permutation
    one-sample t (``stat-t``) and its max-statistic FWE-corrected p (``stat-fwep``,
    :func:`bids_w2v.group.statistics.sign_flip_fwe`).
    """
    n = values.shape[0]
    name = "Wilcoxon signed-rank" if group_test.test == "wilcoxon" else "sign-flip permutation"
    if n < 2:
        note = (
            f"{what}: {n} participant(s); the {name} test needs at least 2, so no "
            "significance or thresholded map was written."
        )
        warnings.warn(note, stacklevel=3)
        notes.append(note)
        return None
    flat = values.reshape(n, -1)
    if group_test.test == "permutation":
        smallest = max(1.0 / (group_test.n_permutations + 1), 1.0 / 2.0 ** (n - 1))
        if smallest > fdr_q:
            note = (
                f"{what}: with {n} participants and {group_test.n_permutations} permutations "
                f"the smallest possible FWE-corrected p-value is {smallest:.3g} > level "
                f"{fdr_q:g}; no voxel can be significant."
            )
            if note not in notes:
                notes.append(note)
        t, p_fwe = sign_flip_fwe(flat, group_test.n_permutations, group_test.seed)
        test = (
            f"two-sided sign-flip permutation test of the one-sample t {tested} "
            f"(nilearn.mass_univariate.permuted_ols, intercept-only design, "
            f"{group_test.n_permutations} permutations, seed {group_test.seed}), "
            "max-statistic FWE correction over voxels"
        )
        correction = "family-wise error, maximum |t| over voxels"
        return Significance(
            test=test,
            corrected=p_fwe,
            criterion="FWE-corrected p",
            level_key="FWELevel",
            maps=[
                ("t", t, {"Statistic": "t"}),
                ("fwep", p_fwe, {"Statistic": "p_fwe", "Correction": correction}),
            ],
        )
    if min_wilcoxon_p(n) > fdr_q:
        note = (
            f"{what}: with {n} participants the smallest possible Wilcoxon p-value is "
            f"{min_wilcoxon_p(n):.3g} > --fdr-q {fdr_q:g}; no voxel can be significant."
        )
        if note not in notes:
            notes.append(note)
    _, p = wilcoxon_against_zero(flat)
    q = fdr_bh(p)
    return Significance(
        test=f"two-sided Wilcoxon signed-rank {tested} (scipy.stats.wilcoxon)",
        corrected=q,
        criterion="q",
        level_key="FDRLevel",
        maps=[
            ("p", p, {"Statistic": "p"}),
            ("q", q, {"Statistic": "q", "Correction": "Benjamini-Hochberg FDR over voxels"}),
        ],
    )


def thresholded(mean: np.ndarray, q: np.ndarray, fdr_q: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(q) & (q < fdr_q), mean, np.nan)


def write_significance(
    out: GroupWriter,
    sig: Significance,
    mean: np.ndarray,
    *,
    fdr_q: float,
    meta: dict,
    desc: str,
    thresholded_stat: str,
    thresholded_meta: dict,
) -> None:
    """Write the test's maps (``stat-p``/``stat-q`` or ``stat-t``/``stat-fwep``) and the
    thresholded mean of one layer.

    ``sig`` comes from :func:`significance_maps` (its ``Test`` goes in every sidecar);
    ``meta`` holds the layer's sidecar fields; ``thresholded_meta`` adds the thresholded map's
    ``Statistic`` and a ``Description`` of what is thresholded (the criterion is appended).
    """
    meta = {**meta, "Test": sig.test}
    for stat, values, extra in sig.maps:
        out.map(values, {**meta, **extra}, stat=stat, desc=desc)
    what = thresholded_meta.get("Description", "Value")
    out.map(
        thresholded(mean, sig.corrected, fdr_q),
        {
            **meta,
            **thresholded_meta,
            "Description": f"{what} where {sig.criterion} < {fdr_q:g}, NaN elsewhere.",
            sig.level_key: fdr_q,
        },
        stat=thresholded_stat,
        desc=desc,
    )
