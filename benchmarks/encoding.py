"""Benchmark the encoding engine against scikit-learn and himalaya on the same outer folds.

Builds synthetic features/voxels with a planted linear signal, then times

* ours: ``bids_w2v.encoding.cross_validated_scores`` (``inner="loo"`` and ``"kfold"``) on each
  requested backend, with the default exact alpha search and/or ``alpha_search="full"``
  (``--alpha-search exact,full``);
* sklearn: ``RidgeCV(alphas, alpha_per_target=True)`` (efficient LOO, always float64);
* himalaya: ``himalaya.ridge.RidgeCV(alphas, cv=KFold(5), fit_intercept=True)`` with the numpy
  backend;

on the same 5 contiguous outer folds (features standardised on each training fold, Pearson r
on the test fold). Each method runs in a fresh worker process, so its peak memory is the
worker's peak resident set size (``VmHWM`` of ``/proc/self/status``, i.e. ``ru_maxrss``); the
table also gives the increase of that peak during the fit over the resident size just before
it (imports and data excluded; the kernel's peak counter is reset through
``/proc/self/clear_refs`` after loading the data). Agreement
is the share of (fold, voxel) pairs with the same alpha as the reference implementation and
the mean |delta r| over (fold, voxel) pairs; ``ours-*`` (exact) is also compared with
``ours-*-full`` (same alpha for every pair expected, by construction).

FLOP bound: each worker of ours measures the single-precision (and double-precision) GEMM rate
of this machine just before and just after its fit (the faster of the two counts), with the
same threads, on a product of the shape the fit uses, and counts the GEMM flops of its fit:
``2 n_train r`` per evaluated (alpha, voxel) pair of the inner criterion and per voxel and fold
for ``Z = U^T Y`` (working dtype), and the small products of the bounds (float64). The bound is
that count divided by the measured rates; "of bound" is bound / measured time.

Usage::

    python benchmarks/encoding.py --n-samples 2000 --n-features 768 --n-voxels 10000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from bids_w2v.encoding import DEFAULT_ALPHAS as ALPHAS  # the paper's grid, logspace(1, 8, 20)


def make_data(n: int, p: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correlated features (low rank + noise, like activations) and voxels with planted signal.

    A third of the voxels are pure noise; the others get a sparse linear readout of the
    features with a signal-to-noise ratio log-spaced from 1e-3 to 1.
    """
    rng = np.random.default_rng(seed)
    rank = max(p // 8, 1)
    X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, p))
    X += 0.5 * rng.standard_normal((n, p))
    W = rng.standard_normal((p, v)) * (rng.random((p, v)) < 0.1)
    signal = X @ W
    signal /= signal.std(0)
    snr = np.logspace(-3, 0, v)
    snr[rng.random(v) < 1 / 3] = 0.0
    Y = signal * np.sqrt(snr) + rng.standard_normal((n, v)) + rng.standard_normal(v)
    return X, Y


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _peer_folds(X, Y, folds, fit):
    """Run a peer ``fit(Xtr, Ytr) -> (alphas, predict)`` on our outer folds."""
    from bids_w2v.encoding.ridge import _standardise

    alphas = np.zeros((len(folds), Y.shape[1]))
    scores = np.zeros((len(folds), Y.shape[1]))
    for k, (train, test) in enumerate(folds):
        Xtr, Xte = _standardise(X[train], X[test])
        Xtr, Xte = Xtr.astype(X.dtype), Xte.astype(X.dtype)
        chosen, predict = fit(Xtr, Y[train])
        alphas[k] = chosen
        scores[k] = _pearson(np.asarray(predict(Xte), dtype=np.float64), Y[test])
    return alphas, scores


def run_method(name: str, X: np.ndarray, Y: np.ndarray, dtype: str, device: str = "cpu"):
    """Fit one method; return (alphas, fold_scores), both (n_folds, n_voxels)."""
    from bids_w2v.encoding import contiguous_folds, cross_validated_scores

    folds = contiguous_folds(X.shape[0], 5)
    if name.startswith("ours"):
        _, backend, inner, *search = name.split("-")
        res = cross_validated_scores(
            X,
            Y,
            alphas=ALPHAS,
            inner=inner,
            backend=backend,
            device=device if backend == "torch" else "cpu",
            dtype=dtype,
            alpha_search=search[0] if search else "exact",
        )
        return res.alphas, res.fold_scores
    if name == "sklearn":
        from sklearn.linear_model import RidgeCV

        def fit(Xtr, Ytr):
            model = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(Xtr, Ytr)
            return model.alpha_, model.predict

        return _peer_folds(X.astype(np.float64), Y.astype(np.float64), folds, fit)
    if name == "himalaya":
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV
        from sklearn.model_selection import KFold

        set_backend("numpy")

        def fit(Xtr, Ytr):
            model = RidgeCV(alphas=ALPHAS.astype(dtype), cv=KFold(5), fit_intercept=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(Xtr, Ytr)
            return model.best_alphas_, model.predict

        return _peer_folds(X.astype(dtype), Y.astype(dtype), folds, fit)
    raise ValueError(f"unknown method {name!r}")


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process, where Linux allows it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def gemm_rates(
    n: int, r: int, dtype: str, device: str = "cpu", seconds: float = 1.0
) -> tuple[float, float]:
    """Measured GEMM rates (flop/s) of ``(n, r) @ (r, 512)`` in ``dtype`` and in float64."""
    if device != "cpu":
        return _torch_gemm_rates(n, r, dtype, device, seconds)
    rates = []
    for dt in (dtype, "float64"):
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, r)).astype(dt)
        B = rng.standard_normal((r, 512)).astype(dt)
        C = np.empty((n, 512), dtype=dt)
        np.matmul(A, B, out=C)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            np.matmul(A, B, out=C)
            count += 1
        rates.append(2.0 * n * r * 512 * count / (time.perf_counter() - start))
    return rates[0], rates[1]


def _torch_gemm_rates(n, r, dtype, device, seconds):
    import torch

    rates = []
    for dt in (getattr(torch, dtype), torch.float64):
        A = torch.randn((n, r), dtype=dt, device=device)
        B = torch.randn((r, 8192), dtype=dt, device=device)
        C = A @ B
        torch.cuda.synchronize()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            for _ in range(10):
                torch.matmul(A, B, out=C)
            torch.cuda.synchronize()
            count += 10
        rates.append(2.0 * n * r * 8192 * count / (time.perf_counter() - start))
    return rates[0], rates[1]


def exact_flops(name: str, n: int, p: int, v: int, evaluated: int) -> tuple[float, float]:
    """GEMM flops of our fit: (working dtype, float64), from the evaluated (alpha, voxel) pairs.

    Per fold (5 contiguous): ``n_tr = 4 n / 5`` training scans, ``r = min(n_tr, p)``. LOO:
    ``2 n_tr r`` per evaluated pair and ``Z = U^T Y`` in the working dtype; the bounds' products
    (``(n_alphas, n_tr)`` and ``(3 n_alphas + n_alphas, r)`` by each voxel) in float64; the
    second stage's (``(2 n_alphas, n_tr)`` by the residuals, ``(n_alphas, n_tr)`` for
    ``sum c^2 y^2``, ``(3 n_alphas + 1, r)`` by ``z^2`` and ``(n_alphas, r)`` by ``|z|``) in
    float64.
    K-fold: every alpha and inner fold, ``2 n_tr r`` per pair plus ``U^T Y`` per inner fold.
    """
    n_tr = 4 * n // 5
    r = min(n_tr, p)
    a = len(ALPHAS)
    if "-kfold" in name:
        work = 5 * (a * 2.0 * n_tr * r * v + 5 * 2.0 * (4 * n_tr // 5) * r * v)
        return work + 5 * 2.0 * n_tr * r * v, 0.0
    work = evaluated * 2.0 * n_tr * r + 5 * 2.0 * (n - n_tr) * r * v  # criterion + refit
    work += 5 * 2.0 * n_tr * r * v  # Z
    high = 5 * (2.0 * a * n_tr * v + 2.0 * 4 * a * r * v)
    high += 5 * (2.0 * 3 * a * n_tr * v + 2.0 * (4 * a + 1) * r * v)
    return work, high


def worker(name: str, data: str, out: str, dtype: str, device: str = "cpu") -> None:
    """Fit one method in this (fresh) process and save timings and results."""
    import bids_w2v.encoding  # noqa: F401  (imports outside the timed region)

    if name.startswith("ours-torch"):
        import torch  # noqa: F401
    elif name == "sklearn":
        import sklearn.linear_model  # noqa: F401
    elif name == "himalaya":
        import himalaya.ridge  # noqa: F401
    with np.load(data) as arrays:
        X, Y = arrays["X"].astype(dtype), arrays["Y"].astype(dtype)
    from bids_w2v.encoding import prune

    rate = rate64 = flops = flops64 = np.nan
    if name.startswith("ours"):
        n_tr = 4 * X.shape[0] // 5
        dev = device if name.startswith("ours-torch") else "cpu"
        rate, rate64 = gemm_rates(n_tr, min(n_tr, X.shape[1]), dtype, dev)
    prune.STATS.update(evaluated=0, total=0)
    # peak before the fit: the current RSS if the peak counter can be reset, else the peak so far
    base = _status_mib("VmRSS") if _reset_peak() else _peak_rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    alphas, scores = run_method(name, X, Y, dtype, device)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak = _peak_rss_mib()
    if name.startswith("ours"):
        flops, flops64 = exact_flops(name, *X.shape, Y.shape[1], prune.STATS["evaluated"])
        # measured again after the fit: the faster of the two (a shared VM's rate varies by
        # 10-40 % between minutes), so that "of bound" is not overstated by a slow measurement
        after = gemm_rates(n_tr, min(n_tr, X.shape[1]), dtype, dev)
        rate, rate64 = max(rate, after[0]), max(rate64, after[1])
    np.savez(
        out, alphas=alphas, scores=scores, wall=wall, cpu=cpu, peak=peak, delta=peak - base,
        rate=rate, rate64=rate64, flops=flops, flops64=flops64,
        evaluated=prune.STATS["evaluated"], total=prune.STATS["total"],
    )  # fmt: skip


def _peer_voxels(spec: str, peers: list[str], n_voxels: int) -> dict[str, int]:
    """Voxels each peer runs on, from ``N`` or ``PEER=N,...`` (default: all)."""
    out = dict.fromkeys(peers, n_voxels)
    for item in (part for part in spec.split(",") if part):
        name, _, value = item.rpartition("=")
        for peer in [name] if name else peers:  # a named method may be ours (e.g. -full)
            out[peer] = min(int(value), n_voxels)
    return out


def _agreement(a: dict, b: dict) -> tuple[float, float]:
    v = min(a["alphas"].shape[1], b["alphas"].shape[1])  # peers may run on the first voxels
    same = np.isclose(a["alphas"][:, :v], b["alphas"][:, :v], rtol=1e-5).mean()
    dr = np.nanmean(np.abs(a["scores"][:, :v] - b["scores"][:, :v]))
    return float(same), float(dr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--n-features", type=int, default=768)
    parser.add_argument("--n-voxels", type=int, default=10000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--peer-dtype",
        choices=["float32", "float64"],
        help="dtype given to himalaya (default: --dtype; sklearn always computes in float64)",
    )
    parser.add_argument("--backends", default="numpy,torch")
    parser.add_argument("--inner", default="loo,kfold", help="inner selections of ours")
    parser.add_argument(
        "--alpha-search",
        default="exact,full",
        help="alpha searches of ours, comma-separated: exact (the default search; methods "
        "named ours-BACKEND-INNER) and/or full (every alpha evaluated; ours-BACKEND-INNER-full)",
    )
    parser.add_argument("--device", default="cpu", help="torch device of ours-torch-*")
    parser.add_argument("--peers", default="himalaya,sklearn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--peer-voxels",
        default="",
        help="N or NAME=N,...: run the peers (or the named methods, also ours-*-full) on the "
        "first N voxels only and scale their time and +fit memory linearly to --n-voxels "
        "(labelled EXTRAPOLATED); agreement is on those N voxels",
    )
    parser.add_argument(
        "--keep",
        help="folder for the per-method results; a method whose result for the same "
        "configuration is already there is not run again (marked 'reused')",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.out, args.dtype, args.device)
        return
    peer_dtype = args.peer_dtype or args.dtype

    backends = [b for b in args.backends.split(",") if b]
    peers = [p for p in args.peers.split(",") if p]
    inners = [i for i in args.inner.split(",") if i]
    searches = [s for s in args.alpha_search.split(",") if s]
    suffix = {"exact": "", "full": "-full"}
    methods = [
        f"ours-{b}-{inner}{suffix[s]}" for b in backends for inner in inners for s in searches
    ] + peers
    reference = {"loo": "sklearn", "kfold": "himalaya"}
    load0 = os.getloadavg()
    X, Y = make_data(args.n_samples, args.n_features, args.n_voxels, args.seed)
    n_peer = _peer_voxels(args.peer_voxels, peers, args.n_voxels)
    results: dict[str, dict] = {}
    reused: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        keep = args.keep or tmp
        os.makedirs(keep, exist_ok=True)
        data = os.path.join(tmp, "data.npz")
        np.savez(data, X=X, Y=Y)
        for name in methods:
            ours = name.startswith("ours")
            dtype = args.dtype if ours else peer_dtype
            n_vox = n_peer.get(name, args.n_voxels)
            tag = f"n{args.n_samples}_p{args.n_features}_v{n_vox}_{dtype}_s{args.seed}"
            out = os.path.join(keep, f"{name}_{tag}.npz")
            if args.keep and os.path.exists(out):
                reused.add(name)
            else:
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", name]
                src = data
                if n_vox < args.n_voxels:
                    src = os.path.join(tmp, f"data_{n_vox}.npz")
                    if not os.path.exists(src):
                        np.savez(src, X=X, Y=Y[:, :n_vox])
                cmd += ["--data", src, "--out", out, "--dtype", dtype, "--device", args.device]
                subprocess.run(cmd, check=True)
            with np.load(out) as f:
                results[name] = {key: f[key] for key in f.files}
            print(f"  done {name}: {float(results[name]['wall']):.1f} s", file=sys.stderr)

    print(
        f"n_samples={args.n_samples} n_features={args.n_features} n_voxels={args.n_voxels} "
        f"dtype={args.dtype} (himalaya: {peer_dtype}, sklearn: float64) "
        "outer=5 contiguous folds, 20 alphas logspace(1, 8)"
    )
    for name in methods:
        if name in results and n_peer.get(name, args.n_voxels) < args.n_voxels:
            scale = args.n_voxels / n_peer[name]
            print(
                f"{name} EXTRAPOLATED: run on the first {n_peer[name]} voxels; its time, CPU "
                f"time and +fit memory are scaled by {scale:g} (peak MiB = measured peak + the "
                f"scaled extra +fit); agreement and mean r are on those {n_peer[name]} voxels"
            )
            res = results[name]
            extra = float(res["delta"]) * (scale - 1)
            res["wall"], res["delta"] = float(res["wall"]) * scale, float(res["delta"]) * scale
            res["cpu"] = float(res["cpu"]) * scale
            res["peak"] = float(res["peak"]) + extra
    if reused:
        print(f"reused from {args.keep} (earlier run): {', '.join(sorted(reused))}")
    cores = os.cpu_count()
    print(f"load average (1, 5, 15 min) at the start: {load0}")
    print(f"machine: {platform.machine()}, {cores} cores, python {platform.python_version()}")
    print("time: wall-clock seconds of the fit; CPU s: process CPU time of the fit (all threads)")
    print("memory: peak RSS (VmHWM = ru_maxrss) of a fresh worker process per method;")
    print("        +fit = that peak minus the RSS just before the fit (imports, data excluded)")
    header = (
        f"{'method':<22}{'time s':>8}{'CPU s':>8}{'peak MiB':>10}{'+fit MiB':>10}"
        f"{'reference':>11}{'same alpha':>12}{'mean|dr|':>10}{'mean r':>8}"
    )
    ratio_peers = [p for p in peers if p in results]
    for peer in ratio_peers:
        header += f"{'t ' + peer[:4] + '/ours':>13}{'cpu ' + peer[:4] + '/ours':>15}"
        header += f"{'mem ' + peer[:4] + '/ours':>15}"
    print(header)
    for name in methods:
        res = results[name]
        inner = name.split("-")[2] if name.startswith("ours") else ""
        ref = reference.get(inner, "") if name.startswith("ours") else ""
        same, dr = _agreement(res, results[ref]) if ref in results else (np.nan, np.nan)
        line = (
            f"{name:<22}{float(res['wall']):>8.1f}{float(res['cpu']):>8.1f}"
            f"{float(res['peak']):>10.0f}"
            f"{float(res['delta']):>10.0f}{ref or '-':>11}{same:>12.4f}{dr:>10.1e}"
            f"{np.nanmean(res['scores']):>8.3f}"
        )
        for peer in ratio_peers:
            if name.startswith("ours"):
                t_ratio = float(results[peer]["wall"]) / float(res["wall"])
                c_ratio = float(results[peer]["cpu"]) / float(res["cpu"])
                m_ratio = float(results[peer]["delta"]) / max(float(res["delta"]), 1.0)
                line += f"{t_ratio:>13.2f}{c_ratio:>15.2f}{m_ratio:>15.2f}"
            else:
                line += f"{'':>13}{'':>15}{'':>15}"
        print(line)
    _print_bounds(methods, results)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(json.dumps({k: round(float(v["wall"]), 2) for k, v in results.items()}))


def _print_bounds(methods: list[str], results: dict) -> None:
    """FLOP bound of each of our fits and identity of the exact search with the full grid."""
    print(
        "FLOP bound: GEMM flops of the fit / GEMM rates measured in the same worker "
        "(work dtype; float64); 'evaluated': share of the (alpha, voxel) pairs of the inner "
        "criterion computed; 'same as full': (fold, voxel) pairs with the alpha of -full"
    )
    print(
        f"{'method':<22}{'time s':>8}{'evaluated':>10}{'GFLOP':>9}{'GFLOP64':>9}"
        f"{'GF/s':>7}{'GF/s64':>8}{'bound s':>9}{'of bound':>9}{'same as full':>13}"
        f"{'r identical':>12}"
    )
    for name in methods:
        res = results[name]
        if not name.startswith("ours") or not np.isfinite(float(res["rate"])):
            continue
        bound = float(res["flops"]) / float(res["rate"]) + float(res["flops64"]) / float(
            res["rate64"]
        )
        share = float(res["evaluated"]) / max(float(res["total"]), 1.0)
        same = ident = "-"
        full = results.get(name + "-full") if not name.endswith("-full") else None
        if full is not None:
            v = full["alphas"].shape[1]
            a, b = res["alphas"][:, :v], full["alphas"]
            same = f"{float(((a == b) | (np.isnan(a) & np.isnan(b))).mean()):.6f}"
            ident = str(bool(np.array_equal(res["scores"][:, :v], full["scores"], equal_nan=True)))
        print(
            f"{name:<22}{float(res['wall']):>8.1f}{share:>10.3f}{float(res['flops']) / 1e9:>9.0f}"
            f"{float(res['flops64']) / 1e9:>9.0f}{float(res['rate']) / 1e9:>7.0f}"
            f"{float(res['rate64']) / 1e9:>8.0f}{bound:>9.1f}{bound / float(res['wall']):>9.2f}"
            f"{same:>13}{ident:>12}"
        )


if __name__ == "__main__":
    main()
