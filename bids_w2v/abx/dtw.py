"""Frame distances and dynamic time warping, batched over pairs of items (torch).

As in ZeroSpeech 2021 (libri-light ``ABX_src``): frames are compared by cosine distance
(``1 - cos``) or angular distance (``arccos(cos) / pi``, what ZeroSpeech calls "cosine"); the
DTW cost accumulates ``d[i, j] + min(up, diagonal, left)`` from ``(0, 0)`` to ``(N-1, M-1)``
and is divided by the length of the optimal path, found by backtracking with the diagonal
preferred, then left, then up. Pairs are processed together, one anti-diagonal at a time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

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


def frame_distances(
    a: torch.Tensor, b: torch.Tensor, distance: str, unit: bool = False
) -> torch.Tensor:
    """Distances between the frames of ``a`` (``..., N, D``) and ``b`` (``..., M, D``).

    A zero frame has cosine similarity 0 with every frame. ``unit=True``: the frames are
    already of unit length (or zero).

    Returns
    -------
    torch.Tensor
        ``(..., N, M)``.
    """
    if not unit:
        a, b = _unit(a), _unit(b)
    cos = torch.clamp(a @ b.transpose(-1, -2), -1.0, 1.0)
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
    batch_size: int = 4096,
    max_block_frames: int = 4096,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised DTW distance of pairs of items.

    Pairs are taken in blocks (in the order given, a new block at each change of ``groups``)
    whose items hold at most ``max_block_frames`` frames together; the distances between all
    frames of a block come from one matrix product, and each pair's matrix is gathered from
    it.

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
    batch_size : int, default 4096
        Pairs aligned together (sorted by length so padding stays small).
    max_block_frames : int, default 4096
        Frames of the items of a block (the block's distance matrix is its square).
    groups : numpy.ndarray, optional
        ``(P,)`` label per pair (e.g. the context): pairs of a group should be consecutive.

    Returns
    -------
    numpy.ndarray
        ``(P,)`` float64 distances.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    lengths = np.array([f.shape[0] for f in features])
    out = np.empty(pairs.shape[0], dtype=np.float64)
    labels = np.zeros(pairs.shape[0], dtype=np.int64) if groups is None else np.asarray(groups)
    with _one_thread():
        for block, items in _blocks(pairs, labels, lengths, max_block_frames):
            _block_distances(features, pairs, lengths, block, items, out, distance, device,
                             batch_size)  # fmt: skip
    return out


def _block_distances(features, pairs, lengths, block, items, out, distance, device, batch_size):
    """Fill ``out[block]``: one block's pairs, from the distances of all its frames."""
    local = np.full(len(features), -1)
    local[items] = np.arange(items.size)
    starts = np.concatenate([[0], np.cumsum(lengths[items])[:-1]])
    frames = np.concatenate([features[k] for k in items]).astype(np.float64)
    unit = _unit(torch.from_numpy(frames).to(device))
    table = frame_distances(unit, unit, distance, unit=True)
    pad = table.shape[0]
    table = torch.nn.functional.pad(table, (0, 1, 0, 1))  # padding frame: index ``pad``
    sub = pairs[block]
    order = np.lexsort((lengths[sub[:, 1]], lengths[sub[:, 0]]))
    for begin in range(0, order.size, batch_size):
        chunk = order[begin : begin + batch_size]
        ia, n = _frame_index(starts, lengths, items, local[sub[chunk, 0]], pad)
        ib, m = _frame_index(starts, lengths, items, local[sub[chunk, 1]], pad)
        ia, ib = torch.from_numpy(ia).to(device), torch.from_numpy(ib).to(device)
        dist = table[ia[:, :, None], ib[:, None, :]]
        n, m = torch.from_numpy(n).to(device), torch.from_numpy(m).to(device)
        out[block[chunk]] = dtw_costs(dist, n, m).cpu().numpy()


def _blocks(pairs: np.ndarray, labels: np.ndarray, lengths: np.ndarray, max_frames: int):
    """``(pair positions, items)`` of consecutive pairs of one label whose items hold
    <= max_frames frames."""
    block: list[int] = []
    items: dict[int, None] = {}
    frames = 0
    previous = labels[0] if labels.size else None
    for position, (i, j) in enumerate(pairs.tolist()):
        new = [k for k in dict.fromkeys((i, j)) if k not in items]
        extra = int(sum(lengths[k] for k in new))
        if block and (frames + extra > max_frames or labels[position] != previous):
            yield np.array(block), np.array(list(items))
            block, items, frames = [], {}, 0
            new = list(dict.fromkeys((i, j)))
            extra = int(sum(lengths[k] for k in new))
        previous = labels[position]
        block.append(position)
        items.update(dict.fromkeys(new))
        frames += extra
    if block:
        yield np.array(block), np.array(list(items))


def _frame_index(starts, lengths, items, which, pad) -> tuple[np.ndarray, np.ndarray]:
    """``(B, N)`` rows of the block's frames of items ``which`` (``pad`` past their end)."""
    n = lengths[items[which]]
    offsets = np.arange(int(n.max()))
    index = starts[which][:, None] + offsets[None, :]
    return np.where(offsets[None, :] < n[:, None], index, pad), n


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch thread: the small element-wise steps of the DTW and of the block distances
    are slower with several (waking the threads costs more than the step; on a busy 2-core
    machine ~60 times more)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _gather(frames, starts, lengths, which, pad_row) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``(B, N, D)`` frames of items ``which`` (padding: a zero frame)."""
    n = lengths[which]
    offsets = np.arange(int(n.max()))
    index = starts[which][:, None] + offsets[None, :]
    index = np.where(offsets[None, :] < n[:, None], index, pad_row)
    device = frames.device
    rows = frames[torch.from_numpy(index).to(device)]
    return rows, torch.from_numpy(n).to(device)
