"""ABX error ON phone BY context, within and across speaker, averaged as ZeroSpeech does.

A cell is a context, a speaker of A and B, a speaker of X (the same one within speaker, another
one across speaker), the phone of A and X and the phone of B. Its triplets are every X of the
phone of A in the cell, every A of that phone (X excluded), every B of the other phone. A
triplet is right when ``d(A, X) < d(B, X)``, counts one half on a tie; the cell's error is one
minus the mean. As in ZeroSpeech 2017 and 2021 (libri-light ``eval_ABX.py``), cell errors are
averaged over contexts (and, across speaker, speakers of X) for each speaker and contrast, then
over speakers for each contrast, then over contrasts (ordered phone pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bids_w2v.abx.dtw import pair_distances
from bids_w2v.errors import InputError

__all__ = ["MODES", "AbxResult", "abx_cells", "average_cells", "cell_error", "score_features"]

#: Speaker conditions.
MODES = ("within", "across")


@dataclass
class AbxResult:
    """ABX error of one set of features in one speaker condition with one distance.

    Attributes
    ----------
    error : float
        The averaged ABX error (0 to 1).
    contrasts : pandas.DataFrame
        ``phone_a``, ``phone_b``, ``error`` (averaged over contexts and speakers),
        ``n_speakers``, ``n_triplets``.
    cells : pandas.DataFrame
        ``context``, ``speaker``, ``speaker_x``, ``phone_a``, ``phone_b``, ``n_triplets``,
        ``error``.
    """

    error: float
    contrasts: pd.DataFrame
    cells: pd.DataFrame

    @property
    def n_triplets(self) -> int:
        """Triplets scored."""
        return int(self.cells["n_triplets"].sum())


def abx_cells(items: pd.DataFrame, mode: str) -> list[dict]:
    """The cells of the task and the item indices of their A, B and X.

    Parameters
    ----------
    items : pandas.DataFrame
        From :func:`bids_w2v.abx.items.read_items` (``context``, ``speaker``, ``phone``).
    mode : {"within", "across"}
        Speaker condition.

    Returns
    -------
    list of dict
        ``context``, ``speaker``, ``speaker_x``, ``phone_a``, ``phone_b`` and integer arrays
        ``a``, ``b``, ``x`` (positions in ``items``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown speaker mode {mode!r}")
    groups = {
        key: np.asarray(index)
        for key, index in items.groupby(["context", "speaker", "phone"], sort=True).indices.items()
    }
    by_cp: dict[tuple, list] = {}
    for context, speaker, phone in groups:
        by_cp.setdefault((context, phone), []).append(speaker)
    cells = []
    for (context, speaker, phone_a), a in groups.items():
        others = [k for k in groups if k[0] == context and k[1] == speaker and k[2] != phone_a]
        if mode == "within":
            xs = [(speaker, a)] if a.size > 1 else []
        else:
            xs = [
                (s, groups[(context, s, phone_a)])
                for s in by_cp[(context, phone_a)]
                if s != speaker
            ]
        for _, _, phone_b in others:
            for speaker_x, x in xs:
                cells.append(
                    dict(
                        context=context,
                        speaker=speaker,
                        speaker_x=speaker_x,
                        phone_a=phone_a,
                        phone_b=phone_b,
                        a=a,
                        b=groups[(context, speaker, phone_b)],
                        x=x,
                    )
                )
    return cells


def cell_error(dxa: np.ndarray, dxb: np.ndarray, same: np.ndarray | None = None) -> tuple:
    """Error of one cell from its distances.

    Parameters
    ----------
    dxa : numpy.ndarray
        ``(n_x, n_a)`` distances of each X to each A.
    dxb : numpy.ndarray
        ``(n_x, n_b)`` distances of each X to each B.
    same : numpy.ndarray of bool, optional
        ``(n_x, n_a)``: pairs where X is A (left out).

    Returns
    -------
    (float, int)
        Error and number of triplets.
    """
    right = (dxa[:, :, None] < dxb[:, None, :]) + 0.5 * (dxa[:, :, None] == dxb[:, None, :])
    keep = np.ones(dxa.shape, dtype=bool) if same is None else ~same
    n = int(keep.sum()) * dxb.shape[1]
    return 1.0 - float(right[keep].sum() / n), n


def average_cells(cells: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """ZeroSpeech averaging: contexts (and speakers of X), then speakers, then contrasts."""
    contrast = ["phone_a", "phone_b"]
    per_speaker = cells.groupby(["speaker", *contrast], sort=True).agg(
        error=("error", "mean"), n_triplets=("n_triplets", "sum")
    )
    per_contrast = (
        per_speaker.reset_index()
        .groupby(contrast, sort=True)
        .agg(
            error=("error", "mean"),
            n_speakers=("speaker", "nunique"),
            n_triplets=("n_triplets", "sum"),
        )
        .reset_index()
    )
    return float(per_contrast["error"].mean()), per_contrast


def score_features(
    features: Sequence[np.ndarray],
    items: pd.DataFrame,
    *,
    modes: Sequence[str] = MODES,
    distances: Sequence[str] = ("cosine",),
    device: str = "cpu",
) -> dict[tuple[str, str], AbxResult]:
    """ABX error of item features for each speaker condition and distance.

    Parameters
    ----------
    features : sequence of numpy.ndarray
        ``(n_frames, dim)`` per item, in the order of ``items``.
    items : pandas.DataFrame
        From :func:`bids_w2v.abx.items.read_items`.
    modes : sequence of {"within", "across"}
        Speaker conditions.
    distances : sequence of {"cosine", "angular"}
        Frame distances.
    device : str, default "cpu"
        Torch device of the DTW.

    Returns
    -------
    dict
        ``(mode, distance) -> AbxResult``.

    Raises
    ------
    InputError
        If a speaker condition has no triplet.
    """
    all_cells = {mode: abx_cells(items, mode) for mode in modes}
    for mode, cells in all_cells.items():
        if not cells:
            need = (
                "two items of the same phone, context and speaker"
                if mode == "within"
                else "the same phone and context from two speakers"
            )
            raise InputError(
                f"The ABX item file gives no triplet {mode} speaker: it needs, in one context, "
                f"two phones of a speaker and {need}. Add such items or drop that condition "
                "(--speaker-mode)."
            )
    # every triplet compares two items of the same context: their distances are enough
    contexts = items.groupby("context", sort=True).indices
    context_index = [np.asarray(i) for i in contexts.values()]
    blocks = [_context_pairs(i) for i in context_index]
    pairs = np.concatenate(blocks)
    groups = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
    results = {}
    for distance in distances:
        values = pair_distances(features, pairs, distance, device=device, groups=groups)
        matrix = _Lookup(context_index, pairs, values)
        for mode, cells in all_cells.items():
            rows = []
            for cell in cells:
                dxa = matrix.get(cell["x"], cell["a"])
                dxb = matrix.get(cell["x"], cell["b"])
                same = cell["x"][:, None] == cell["a"][None, :]
                error, n = cell_error(dxa, dxb, same)
                info = {k: v for k, v in cell.items() if k not in ("a", "b", "x")}
                rows.append({**info, "n_triplets": n, "error": error})
            table = pd.DataFrame(rows)
            error, contrasts = average_cells(table)
            results[(mode, distance)] = AbxResult(error, contrasts, table)
    return results


def _context_pairs(index: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(index.size)
    return np.stack([index[i], index[j]], axis=1)


class _Lookup:
    """Symmetric distances of item pairs, one dense matrix per context."""

    def __init__(self, contexts: list[np.ndarray], pairs: np.ndarray, values: np.ndarray) -> None:
        n_items = int(max(int(c.max()) for c in contexts)) + 1
        self.block = np.empty(n_items, dtype=np.int64)
        self.local = np.empty(n_items, dtype=np.int64)
        for k, index in enumerate(contexts):
            self.block[index], self.local[index] = k, np.arange(index.size)
        self.matrices = [np.full((c.size, c.size), np.nan) for c in contexts]
        for k, matrix in enumerate(self.matrices):
            mine = self.block[pairs[:, 0]] == k
            i, j = self.local[pairs[mine, 0]], self.local[pairs[mine, 1]]
            matrix[i, j] = matrix[j, i] = values[mine]

    def get(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        matrix = self.matrices[self.block[rows[0]]]  # a cell's items share a context
        return matrix[np.ix_(self.local[rows], self.local[cols])]
