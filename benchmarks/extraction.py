"""Benchmark of bids_w2v feature extraction against a plain transformers loop.

Measured in one run, with the same model, audio, windows and threads:

* ``extract_features`` (every layer: 7 conv + 12 transformer for wav2vec2-base, 10 s windows
  every 5 s, overlap averaging, conv layers pooled to 50 Hz) versus the peer, a plain loop
  calling ``model(x, output_hidden_states=True)`` on the same window batches and keeping the
  hidden states as numpy arrays: wall time, real-time factor and the ratio ours / plain;
* the peak resident memory (``ru_maxrss``) of extracting 1 and 10 minutes of audio, each in a
  fresh subprocess;
* the cost of a cache hit of :func:`bids_w2v.features.cache.load_or_extract`.

The audio is the shipped ``barber.wav`` recording tiled to the requested length. Example::

    .venv/bin/python benchmarks/extraction.py --seconds 60 --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bids_w2v.features import (
    available_layers,
    extract_features,
    feature_cache_key,
    load_model,
    load_or_extract,
    model_hop,
    plan_windows,
    receptive_field,
    save_features,
)
from bids_w2v.io.audio import load_audio


def make_audio(seconds: float, sr: int) -> np.ndarray:
    """Shipped speech tiled to ``seconds`` seconds at ``sr`` Hz."""
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        clip = load_audio(folder / "barber.wav", sr)
    n = int(round(seconds * sr))
    return np.resize(clip, n).astype(np.float32)


def plain_loop(loaded, audio: np.ndarray, window_s: float, stride_s: float, batch_size: int):
    """The peer: a straightforward transformers loop over the same windows."""
    model, sr = loaded.model, loaded.sampling_rate
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    hop = model_hop(model)
    bounds = plan_windows(
        len(x), int(window_s * sr), int(stride_s * sr), hop, receptive_field(model)
    )
    outputs = []
    with torch.inference_mode():
        i = 0
        while i < len(bounds):
            length = bounds[i][1] - bounds[i][0]
            batch = [bounds[i]]
            while (
                i + len(batch) < len(bounds)
                and len(batch) < batch_size
                and bounds[i + len(batch)][1] - bounds[i + len(batch)][0] == length
            ):
                batch.append(bounds[i + len(batch)])
            inputs = torch.from_numpy(np.stack([x[s:e] for s, e in batch]))
            out = model(inputs, output_hidden_states=True)
            outputs.append([h.numpy() for h in out.hidden_states])
            i += len(batch)
    return outputs


def _peak_mib() -> tuple[float, float]:
    """(ru_maxrss, VmHWM) of this process in MiB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    hwm = [int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("VmHWM")]
    return maxrss, hwm[0] if hwm else float("nan")


def rss_child(args: argparse.Namespace) -> None:
    """Extract ``args.rss_child`` seconds of audio and print the peak memory as JSON."""
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, random_init=not args.pretrained, seed=args.seed)
    audio = make_audio(args.rss_child, loaded.sampling_rate)
    loaded_mib = _peak_mib()[0]
    start = time.perf_counter()
    feats = extract_features(
        loaded,
        audio,
        layers=available_layers(loaded),
        window_s=args.window,
        stride_s=args.stride,
        batch_size=args.batch_size,
    )
    wall = time.perf_counter() - start
    maxrss, hwm = _peak_mib()
    out = sum(a.nbytes for a in feats.layers.values()) / 2**20
    result = {"maxrss": maxrss, "hwm": hwm, "loaded": loaded_mib, "out": out, "wall": wall}
    print(json.dumps(result))


def run_rss(args: argparse.Namespace, minutes: float) -> None:
    """Measure one audio length in a fresh interpreter and print its peak memory."""
    cmd = [sys.executable, __file__, "--rss-child", str(minutes * 60), "--model", args.model]
    cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
    cmd += ["--window", str(args.window), "--stride", str(args.stride)]
    cmd += ["--batch-size", str(args.batch_size)] + (["--pretrained"] if args.pretrained else [])
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"peak RSS, {minutes:g} min of audio: ru_maxrss {res['maxrss']:.0f} MiB "
        f"(VmHWM {res['hwm']:.0f}; after model load {res['loaded']:.0f}; features held "
        f"{res['out']:.0f}) - extraction {res['wall']:.1f} s, RTF {res['wall'] / minutes / 60:.3f}"
    )


def run_timing(args: argparse.Namespace) -> None:
    """Time ours against the plain loop, then a cache hit."""
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, random_init=not args.pretrained, seed=args.seed)
    layers = available_layers(loaded)
    audio = make_audio(args.seconds, loaded.sampling_rate)
    extract_features(loaded, audio[: 2 * loaded.sampling_rate], layers=layers)  # warm-up
    options = dict(layers=layers, window_s=args.window, stride_s=args.stride)
    wall: dict[str, list[float]] = {"ours": [], "plain": []}
    cpu: dict[str, list[float]] = {"ours": [], "plain": []}
    for repeat in range(args.repeats):  # interleaved, alternating order, best kept
        for which in ("ours", "plain") if repeat % 2 == 0 else ("plain", "ours"):
            start, start_cpu = time.perf_counter(), time.process_time()
            if which == "ours":
                feats = extract_features(loaded, audio, batch_size=args.batch_size, **options)
            else:
                plain_loop(loaded, audio, args.window, args.stride, args.batch_size)
            wall[which].append(time.perf_counter() - start)
            cpu[which].append(time.process_time() - start_cpu)
    ours, peer = min(wall["ours"]), min(wall["plain"])
    ours_cpu, peer_cpu = min(cpu["ours"]), min(cpu["plain"])
    print(
        f"ours  extract_features : wall {ours:7.2f} s  RTF {ours / args.seconds:.3f}  "
        f"CPU {ours_cpu:7.2f} s  ({len(layers)} layers: conv pooled to 50 Hz, overlap averaged)"
    )
    print(
        f"plain transformers loop: wall {peer:7.2f} s  RTF {peer / args.seconds:.3f}  "
        f"CPU {peer_cpu:7.2f} s  (output_hidden_states=True, hidden states kept per window)"
    )
    print(
        f"overhead ours / plain  : wall {ours / peer:.3f}x, CPU time {ours_cpu / peer_cpu:.3f}x "
        "(target <= 1.1x)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "stim.wav"
        sf.write(wav, audio, loaded.sampling_rate, subtype="PCM_16")
        save_features(Path(tmp) / f"{feature_cache_key(wav, loaded, **options)}.npz", feats)
        start = time.perf_counter()
        hit = load_or_extract(tmp, wav, loaded, **options)
        hit_t = time.perf_counter() - start
        size = sum(a.nbytes for a in hit.layers.values()) / 2**20
    print(
        f"cache hit ({size:.0f} MiB of features): {hit_t * 1000:.1f} ms "
        f"({hit_t / ours * 100:.2f} % of the extraction)"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio for the timing")
    parser.add_argument("--model", default="wav2vec2-base")
    parser.add_argument("--pretrained", action="store_true", help="trained weights (cached)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--stride", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="timing repeats (best kept)")
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[1.0, 10.0])
    parser.add_argument("--no-timing", action="store_true", help="only the memory runs")
    parser.add_argument("--rss-child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args)
        return
    print(
        f"model {args.model} ({'trained' if args.pretrained else 'random init'}), all layers, "
        f"torch {torch.__version__} with {args.threads} threads, windows {args.window:g} s "
        f"every {args.stride:g} s, batch {args.batch_size}, timing on {args.seconds:g} s of audio"
    )
    # memory first: on Linux a child's ru_maxrss starts from its parent's resident size
    for minutes in args.rss_minutes:
        run_rss(args, minutes)
    if not args.no_timing:
        run_timing(args)


if __name__ == "__main__":
    main()
