"""Frame distances and dynamic time warping, batched over pairs of items (torch).

As in ZeroSpeech 2021 (libri-light ``ABX_src``): frames are compared by cosine distance
(``1 - cos``) or angular distance (``arccos(cos) / pi``, what ZeroSpeech calls "cosine"); the
DTW cost accumulates ``d[i, j] + min(up, diagonal, left)`` from ``(0, 0)`` to ``(N-1, M-1)``
and is divided by the length of the optimal path, found by backtracking with the diagonal
preferred, then left, then up. Pairs are processed together, one anti-diagonal at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["DISTANCES", "dtw_costs", "frame_distances", "pair_distances"]

#: Frame distances: name -> description.
DISTANCES = {
    "cosine": "1 - cosine similarity of the frames",
    "angular": "arccos(cosine similarity) / pi (ZeroSpeech's 'cosine')",
}


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def frame_distances(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """Distances between the frames of ``a`` (``..., N, D``) and ``b`` (``..., M, D``).

    A zero frame has cosine similarity 0 with every frame.

    Returns
    -------
    torch.Tensor
        ``(..., N, M)``.
    """
    cos = torch.clamp(_unit(a) @ _unit(b).transpose(-1, -2), -1.0, 1.0)
    if distance == "cosine":
        return 1.0 - cos
    if distance == "angular":
        return torch.arccos(cos) / math.pi
    raise ValueError(f"unknown distance {distance!r}; use one of {sorted(DISTANCES)}")


def dtw_costs(
    dist: torch.Tensor, n: torch.Tensor, m: torch.Tensor, normalized: bool = True
) -> torch.Tensor:
    """DTW cost of a batch of padded frame-distance matrices.

    Parameters
    ----------
    dist : torch.Tensor
        ``(B, N, M)`` distances; pair ``k`` uses ``dist[k, :n[k], :m[k]]`` (padding ignored).
    n, m : torch.Tensor
        ``(B,)`` lengths (at least 1).
    normalized : bool, default True
        Divide by the length of the optimal path (libri-light's backtracking).

    Returns
    -------
    torch.Tensor
        ``(B,)`` costs, in the dtype of ``dist``.
    """
    batch, rows, cols = dist.shape
    n_diag = rows + cols - 1
    device = dist.device
    # skewed layout: skew[:, k, i] = dist[:, i, k - i] on anti-diagonal k (inf off the matrix)
    i = torch.arange(rows, device=device)
    j = torch.arange(n_diag, device=device)[:, None] - i[None, :]
    inside = (j >= 0) & (j < cols)
    flat = (i[None, :] * cols + j.clamp(0, cols - 1)).reshape(-1)
    skew = dist.reshape(batch, -1)[:, flat].reshape(batch, n_diag, rows)
    skew = skew.masked_fill(~inside, math.inf).permute(1, 0, 2).contiguous()
    # cost[k + 2, :, i + 1] = accumulated cost at (i, k - i); (-1, -1) costs 0
    cost = torch.full((n_diag + 2, batch, rows + 1), math.inf, dtype=dist.dtype, device=device)
    cost[0, :, 0] = 0.0
    for k in range(n_diag):
        step = torch.minimum(cost[k + 1, :, :-1], cost[k + 1, :, 1:])  # up, left
        torch.minimum(step, cost[k, :, :-1], out=step)  # diagonal
        cost[k + 2, :, 1:] = step.add_(skew[k])
    cost = cost.permute(1, 0, 2)  # (batch, diagonal, row)
    index = torch.arange(batch, device=device)
    final = cost[index, n + m, n]
    if not normalized:
        return final
    return final / _path_lengths(cost, n, m)


def _path_lengths(cost: torch.Tensor, n: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Length of the backtracked path of each pair (diagonal, then left, then up on ties)."""
    index = torch.arange(cost.shape[0], device=cost.device)
    i, j = n.clone() - 1, m.clone() - 1  # current cell
    length = torch.ones_like(i)
    for _ in range(int(cost.shape[1])):
        active = (i > 0) & (j > 0)
        if not bool(active.any()):
            break
        k = i + j
        up, left, diag = cost[index, k + 1, i], cost[index, k + 1, i + 1], cost[index, k, i]
        go_diag = (diag <= left) & (diag <= up)
        go_left = ~go_diag & (left <= up)
        go_up = ~go_diag & ~go_left
        i = i - (active & (go_diag | go_up)).long()
        j = j - (active & (go_diag | go_left)).long()
        length = length + active.long()
    return (length + i + j).to(cost.dtype)  # straight to (0, 0) along the border


def pair_distances(
    features: Sequence[np.ndarray],
    pairs: np.ndarray,
    distance: str,
    *,
    device: str = "cpu",
    batch_size: int = 2048,
) -> np.ndarray:
    """Normalised DTW distance of pairs of items.

    Parameters
    ----------
    features : sequence of numpy.ndarray
        ``(n_frames_i, dim)`` per item.
    pairs : numpy.ndarray
        ``(P, 2)`` item indices.
    distance : {"cosine", "angular"}
        Frame distance.
    device : str, default "cpu"
        Torch device for the computation.
    batch_size : int, default 2048
        Pairs computed together (pairs are sorted by length so padding stays small).

    Returns
    -------
    numpy.ndarray
        ``(P,)`` float64 distances.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    lengths = np.array([f.shape[0] for f in features])
    out = np.empty(pairs.shape[0], dtype=np.float64)
    order = np.lexsort((lengths[pairs[:, 1]], lengths[pairs[:, 0]]))
    for start in range(0, order.size, batch_size):
        chunk = order[start : start + batch_size]
        first, second = pairs[chunk, 0], pairs[chunk, 1]
        a, n = _pad([features[k] for k in first], device)
        b, m = _pad([features[k] for k in second], device)
        dist = frame_distances(a, b, distance)
        out[chunk] = dtw_costs(dist, n, m).cpu().numpy()
    return out


def _pad(arrays: Sequence[np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [a.shape[0] for a in arrays]
    padded = np.zeros((len(arrays), max(lengths), arrays[0].shape[1]), dtype=np.float64)
    for k, a in enumerate(arrays):
        padded[k, : a.shape[0]] = a
    return (
        torch.from_numpy(padded).to(device),
        torch.tensor(lengths, dtype=torch.long, device=device),
    )
