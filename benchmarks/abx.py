"""Benchmark of the ABX engine (bids_w2v.abx) against per-pair DTW with dtw-python.

Measured in one run, on the same synthetic item features and the same triplets:

* **ours**: :func:`bids_w2v.abx.score.score_features` (every pair of items sharing a context,
  batched frame distances and anti-diagonal DTW in torch, then the cells and the ZeroSpeech
  averaging), within and across speaker, cosine distance;
* **dtw-python**: the same pairs, one ``dtw.dtw(local_costs, step_pattern=symmetric1)`` call per
  pair on the frame-distance matrix from ``scipy.spatial.distance.cdist(..., "cosine")``,
  normalised by the path length, then the same cells and averaging.

Both must give the same errors; the ratio is peer time / ours (> 1: we are faster). The item
set has ``--contexts`` contexts, 4 speakers, 3 phones and 2 items per context, speaker and
phone (10,080 triplets within + across with the default 15 contexts); item lengths are 5-25
frames of ``--dim`` units. Example::

    .venv/bin/python benchmarks/abx.py --contexts 15 --dim 768
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bids_w2v.abx.score import abx_cells, average_cells, cell_error, score_features


def make_items(n_contexts: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    centres = rng.normal(size=(3, dim))
    for c in range(n_contexts):
        for s in range(4):
            shift = rng.normal(scale=1.5, size=dim)
            for p in range(3):
                for k in range(2):
                    n = int(rng.integers(5, 26))
                    feats.append(centres[p] + shift + rng.normal(scale=6.0, size=(n, dim)))
                    rows.append((f"f{c}_{s}_{p}_{k}", 0.0, 1.0, f"p{p}", f"c{c}", "x", f"s{s}"))
    items = pd.DataFrame(
        rows, columns=["file", "onset", "offset", "phone", "prev", "next", "speaker"]
    )
    items["context"] = items["prev"] + "+" + items["next"]
    return items, feats


def peer(feats, items, modes):
    import dtw
    from scipy.spatial.distance import cdist

    cache = {}

    def distance(i, j):
        key = (min(i, j), max(i, j))
        if key not in cache:
            local = cdist(feats[key[0]], feats[key[1]], "cosine")
            result = dtw.dtw(local, step_pattern=dtw.symmetric1)
            cache[key] = result.distance / len(result.index1)
        return cache[key]

    out = {}
    for mode in modes:
        rows = []
        for cell in abx_cells(items, mode):
            dxa = np.array([[distance(x, a) for a in cell["a"]] for x in cell["x"]])
            dxb = np.array([[distance(x, b) for b in cell["b"]] for x in cell["x"]])
            error, n = cell_error(dxa, dxb, cell["x"][:, None] == cell["a"][None, :])
            rows.append(
                {
                    **{
                        k: cell[k]
                        for k in ("context", "speaker", "speaker_x", "phone_a", "phone_b")
                    },
                    "n_triplets": n,
                    "error": error,
                }
            )
        out[mode] = average_cells(pd.DataFrame(rows))[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=15)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    items, feats = make_items(args.contexts, args.dim)
    modes = ("within", "across")
    ours_t, peer_t = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = score_features(feats, items, modes=modes)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = peer(feats, items, modes)
        peer_t.append(time.perf_counter() - start)
    n = sum(ours[(m, "cosine")].n_triplets for m in modes)
    print(f"items {len(items)}, triplets {n} (within + across), dim {args.dim}")
    for mode in modes:
        print(
            f"  {mode}: error ours {ours[(mode, 'cosine')].error:.6f}, "
            f"dtw-python {theirs[mode]:.6f}"
        )
        assert abs(ours[(mode, "cosine")].error - theirs[mode]) < 1e-9
    best_ours, best_peer = min(ours_t), min(peer_t)
    print(f"ours        {best_ours:7.2f} s (best of {args.repeats})")
    print(f"dtw-python  {best_peer:7.2f} s (best of {args.repeats})")
    print(f"ratio dtw-python / ours: {best_peer / best_ours:.1f}")


if __name__ == "__main__":
    main()
