"""Benchmark of bids_w2v feature extraction against a plain transformers loop.

Measured in one run, with the same model, audio, windows and threads:

* ``extract_features`` (every layer: 7 conv + 12 transformer for wav2vec2-base, 10 s windows
  every 5 s, overlap averaging, conv layers pooled to 50 Hz, in memory) and
  ``cached_features_path`` (the pipeline's path: hash the file, stream every frame to the
  on-disk cache as soon as it is final) versus the peer, a plain loop calling
  ``model(x, output_hidden_states=True)`` on the same window batches and keeping the hidden
  states as numpy arrays: wall and CPU time, real-time factor and the ratios ours / plain;
* the peak resident memory (``ru_maxrss``) of extracting N minutes of audio into the cache, each
  length in a fresh subprocess; ``--rss-model`` picks the model of these runs (``base``: the
  timing model; ``narrow``: wav2vec2-base's conv geometry with narrow layers, so that an hour of
  audio takes a minute on a laptop CPU); the heap is kept as the extraction node keeps it
  (``bids_w2v.heap.retained_heap``), or left to glibc's defaults with ``--default-heap``;
* the cost of a cache hit (hash the audio, check the entry, map one layer and read it).

The audio is the shipped ``barber.wav`` recording tiled to the requested length. Example::

    .venv/bin/python benchmarks/extraction.py --seconds 30 --rss-minutes 1 5

``--participant`` instead measures what a user gets (issue 19): ``bids-w2v BIDS OUT
participant`` with the default resource flags (``--nprocs``, ``--omp-nthreads``, ``--mem``
resolved from the machine) on a simulated dataset (``bids_w2v.testing.simulator``, one
participant, ``--participant-runs`` runs of the two shipped recordings cut to ``--clip``
seconds), in a fresh process; the extraction node's wall time (Nipype's ``runtime.duration``:
importing torch and transformers in the node's fresh worker, model loading, audio hashing, every
window of every stimulus, the cache writes) is compared with the peer: the same model loaded by
``load_model`` plus a plain transformers loop over the same windows of the same audio, with
torch set to the thread count the node used (read from the node's inputs), run three ways: as
a user's script in a fresh process, timed from before its imports (the comparison with the node,
which pays the same imports), with glibc's default heap and with the heap settings the node uses
(``bids_w2v.heap``, given as glibc's ``MALLOC_*_`` variables), and last in this process, where
torch and transformers are already imported (last, because a parent that has run torch slows
the fresh processes it starts afterwards). Runs alternate; the best of ``--repeats`` is kept::

    .venv/bin/python benchmarks/extraction.py --participant --participant-runs 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bids_w2v.features import (
    available_layers,
    cached_features_path,
    extract_features,
    load_features,
    load_model,
    model_hop,
    plan_windows,
    receptive_field,
)
from bids_w2v.heap import held_environment, retained_heap
from bids_w2v.inputs.audio import load_audio

#: wav2vec2-base's conv strides and kernels (so 50 Hz frames, same windows) with narrow layers.
NARROW = dict(
    hidden_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=192,
    conv_dim=(64,) * 7,
    num_conv_pos_embeddings=32,
    num_conv_pos_embedding_groups=4,
)


def make_audio(seconds: float, sr: int) -> np.ndarray:
    """Shipped speech tiled to ``seconds`` seconds at ``sr`` Hz."""
    with resources.as_file(resources.files("bids_w2v") / "data" / "speech") as folder:
        clip = load_audio(folder / "barber.wav", sr)
    n = int(round(seconds * sr))
    return np.resize(clip, n).astype(np.float32)


def get_model(which: str, seed: int, pretrained: bool, tmp: Path):
    """The base model (shipped config, random init) or the narrow one (saved to ``tmp``)."""
    if which != "narrow":
        return load_model(which, random_init=not pretrained, seed=seed)
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp / "narrow-wav2vec2"
    torch.manual_seed(seed)
    Wav2Vec2Model(Wav2Vec2Config(**NARROW)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return load_model(folder)


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


def _peak_mib() -> float:
    """ru_maxrss of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mib() -> float:
    """VmHWM (peak resident size since the last reset) of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    """Reset VmHWM to the current resident size (Linux ``clear_refs``); return that size."""
    Path("/proc/self/clear_refs").write_text("5")
    return _hwm_mib()


def rss_child(args: argparse.Namespace) -> None:
    """Extract ``args.rss_child`` seconds into a cache and print the peak memory as JSON."""
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        which = args.model if args.rss_model == "base" else args.rss_model
        loaded = get_model(which, args.seed, args.pretrained, Path(tmp))
        audio = make_audio(args.rss_child, loaded.sampling_rate)
        wav = Path(tmp) / "stim.wav"
        sf.write(wav, audio, loaded.sampling_rate, subtype="FLOAT")
        audio_mib = audio.nbytes / 2**20
        del audio
        before = _reset_peak()
        start = time.perf_counter()
        # the heap as the extraction node keeps it, unless --default-heap
        with nullcontext() if args.default_heap else retained_heap():
            entry = cached_features_path(
                Path(tmp) / "cache",
                wav,
                loaded,
                layers=available_layers(loaded),
                window_s=args.window,
                stride_s=args.stride,
                batch_size=args.batch_size,
            )
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in entry.iterdir()) / 2**20
    result = {"maxrss": _peak_mib(), "before": before, "out": size, "wall": wall}
    result["hwm"] = _hwm_mib()
    result["audio"] = audio_mib
    print(json.dumps(result))


def run_rss(args: argparse.Namespace, minutes: float) -> None:
    """Measure one audio length in a fresh interpreter and print its peak memory."""
    cmd = [sys.executable, __file__, "--rss-child", str(minutes * 60), "--model", args.model]
    cmd += ["--default-heap"] if args.default_heap else []
    cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
    cmd += ["--window", str(args.window), "--stride", str(args.stride)]
    cmd += ["--batch-size", str(args.batch_size), "--rss-model", args.rss_model]
    cmd += ["--pretrained"] if args.pretrained else []
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"peak RSS, {minutes:g} min of audio ({args.rss_model}, "
        f"{'default' if args.default_heap else 'retained'} heap): during extraction (VmHWM after "
        f"a reset) {res['hwm']:.0f} MiB, resident before it {res['before']:.0f} MiB, "
        f"ru_maxrss {res['maxrss']:.0f} MiB (whole process; features written to the cache "
        f"{res['out']:.0f} MiB; audio {res['audio']:.0f} MiB) - extraction {res['wall']:.1f} s, "
        f"RTF {res['wall'] / minutes / 60:.3f}",
        flush=True,
    )


def run_timing(args: argparse.Namespace) -> None:
    """Time ours (in memory, and streamed to the cache) against the plain loop, then a hit."""
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, random_init=not args.pretrained, seed=args.seed)
    layers = available_layers(loaded)
    audio = make_audio(args.seconds, loaded.sampling_rate)
    extract_features(loaded, audio[: 2 * loaded.sampling_rate], layers=layers)  # warm-up
    options = dict(layers=layers, window_s=args.window, stride_s=args.stride)
    methods = ("memory", "cache", "plain")
    wall: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "stim.wav"
        sf.write(wav, audio, loaded.sampling_rate, subtype="FLOAT")
        for repeat in range(args.repeats):  # interleaved, rotating order, best kept
            order = methods[repeat % 3 :] + methods[: repeat % 3]
            for which in order:
                cache = Path(tmp) / f"cache{repeat}"
                start, start_cpu = time.perf_counter(), time.process_time()
                if which == "memory":
                    extract_features(loaded, audio, batch_size=args.batch_size, **options)
                elif which == "cache":
                    cached_features_path(cache, wav, loaded, batch_size=args.batch_size, **options)
                else:
                    plain_loop(loaded, audio, args.window, args.stride, args.batch_size)
                wall[which].append(time.perf_counter() - start)
                cpu[which].append(time.process_time() - start_cpu)
        best = {m: min(wall[m]) for m in methods}
        best_cpu = {m: min(cpu[m]) for m in methods}
        text = {
            "memory": "extract_features, in memory",
            "cache": "cached_features_path, streamed to disk",
            "plain": "plain transformers loop",
        }
        for m in methods:
            print(
                f"{text[m]:40s}: wall {best[m]:7.2f} s  RTF {best[m] / args.seconds:.3f}  "
                f"CPU {best_cpu[m]:7.2f} s"
            )
        for m in ("memory", "cache"):
            print(
                f"overhead {m:6s} / plain: wall {best[m] / best['plain']:.3f}x, CPU time "
                f"{best_cpu[m] / best_cpu['plain']:.3f}x (target <= 1.1x)"
            )
        hits = []
        for _ in range(5):
            start = time.perf_counter()
            entry = cached_features_path(Path(tmp) / "cache0", wav, loaded, **options)
            layer = np.asarray(load_features(entry).layers["transformer11"]).sum()
            hits.append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in entry.iterdir()) / 2**20
    hit = min(hits)
    print(
        f"cache hit ({size:.0f} MiB of features; hash the audio, check the entry, map and read "
        f"transformer11): {hit * 1000:.1f} ms ({hit / best['cache'] * 100:.2f} % of the "
        f"extraction; checksum {layer:.3g})"
    )


def _participant_node(work: Path) -> tuple[float, int]:
    """Wall time and threads of the extraction node of a finished participant run."""
    from nipype.utils.filemanip import loadpkl

    (result_file,) = work.glob("bids_w2v_wf/extract_features_*/result_extract_features_*.pklz")
    result = loadpkl(result_file)
    return float(result.runtime.duration), int(result.inputs["num_threads"])


def run_participant(args: argparse.Namespace) -> None:
    """A participant run with default resource flags against a plain loop (issue 19)."""
    from bids_w2v.inputs.audio import audio_duration
    from bids_w2v.resources import available_cpus, available_memory_gb
    from bids_w2v.testing.simulator import SimulationSpec, simulate_dataset

    model = "facebook/wav2vec2-base"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        spec = SimulationSpec(
            subjects=("01",), n_runs=args.participant_runs, clip_seconds=args.clip or None,
            random_init=not args.pretrained, seed=args.seed,
        )  # fmt: skip
        simulate_dataset(root, spec, cache_dir=Path(tmp) / "simulator-cache")
        stimuli = sorted((root / "stimuli").glob("*.wav"))
        seconds = sum(audio_duration(p) for p in stimuli)
        print(
            f"participant run, default resource flags: machine {available_cpus()} CPUs, "
            f"{available_memory_gb()} GB available; {len(stimuli)} stimuli, {seconds:.1f} s of "
            f"audio; model {model} ({'trained' if args.pretrained else 'random init'})",
            flush=True,
        )
        ours, peer, peer_load = [], [], []
        fresh: dict[str, list[dict]] = {"default": [], "held": []}
        threads, spec = None, None
        for repeat in range(args.repeats):
            for which in ("ours", "peer") if repeat % 2 == 0 else ("peer", "ours"):
                if which == "ours":
                    work, out = Path(tmp) / f"work{repeat}", Path(tmp) / f"out{repeat}"
                    cmd = [sys.executable, "-m", "bids_w2v", str(root), str(out), "participant",
                           "-w", str(work), "--model", model, "-q"]  # fmt: skip
                    cmd += [] if args.pretrained else ["--random-init", "--seed", str(args.seed)]
                    subprocess.run(cmd, check=True)
                    duration, threads = _participant_node(work)
                    ours.append(duration)
                    print(f"  participant run {repeat}: extraction node {duration:.2f} s, "
                          f"{threads} threads", flush=True)  # fmt: skip
                    continue
                if threads is None:  # the peer needs the node's thread count: ours first
                    continue
                spec = _peer_spec(args, model, stimuli, threads)
                for heap in ("default", "held") if repeat % 2 else ("held", "default"):
                    fresh[heap].append(_fresh_peer(spec, heap_env=heap == "held"))
                    got = fresh[heap][-1]
                    print(f"  plain loop {repeat}, fresh process, {heap} heap: "
                          f"{got['total']:.2f} s (imports {got['imports']:.2f} s, loading "
                          f"{got['loading']:.2f} s)", flush=True)  # fmt: skip
        # last: running torch here slows the fresh processes started after (page reclaim)
        for repeat in range(args.repeats):
            loading, total = _plain_peer(spec)
            peer.append(total)
            peer_load.append(loading)
            print(f"  plain loop {repeat}, this process: {peer[-1]:.2f} s (loading "
                  f"{peer_load[-1]:.2f} s)", flush=True)  # fmt: skip
    best_ours, best_peer = min(ours), min(peer)
    print(f"extraction node of the participant run ({threads} threads): {best_ours:7.2f} s "
          f"(all: {', '.join(f'{t:.2f}' for t in ours)})")  # fmt: skip
    for heap, text in (("default", "glibc's default heap"), ("held", "the node's heap settings")):
        totals = [f["total"] for f in fresh[heap]]
        print(f"plain loop in a fresh process (imports included, as in the node), {threads} "
              f"threads, {text}: {min(totals):7.2f} s (all: "
              f"{', '.join(f'{t:.2f}' for t in totals)})")  # fmt: skip
    print(f"plain loop in this process (torch and transformers already imported), {threads} "
          f"threads: {best_peer:7.2f} s, of which model loading {min(peer_load):.2f} s (all: "
          f"{', '.join(f'{t:.2f}' for t in peer)})")  # fmt: skip
    best_default = min(f["total"] for f in fresh["default"])
    best_held = min(f["total"] for f in fresh["held"])
    print(f"ratio participant extraction / plain loop in a fresh process: "
          f"{best_ours / best_default:.3f}x (target <= 1.1x); with the node's heap settings: "
          f"{best_ours / best_held:.3f}x; / plain loop in this process: "
          f"{best_ours / best_peer:.3f}x")  # fmt: skip


def _peer_spec(args: argparse.Namespace, model: str, stimuli: list[Path], threads: int) -> dict:
    """What the plain loop runs: the model, the stimuli, the windows and the node's threads."""
    return {
        "model": model, "pretrained": args.pretrained, "seed": args.seed, "threads": threads,
        "window": args.window, "stride": args.stride, "batch_size": args.batch_size,
        "stimuli": [str(p) for p in stimuli],
    }  # fmt: skip


def _plain_peer(spec: dict) -> tuple[float, float]:
    """Load the model and run the plain loop over every stimulus: (loading s, total s)."""
    torch.set_num_threads(spec["threads"])
    start = time.perf_counter()
    loaded = load_model(spec["model"], random_init=not spec["pretrained"], seed=spec["seed"])
    loaded_at = time.perf_counter()
    for path in spec["stimuli"]:
        audio = load_audio(path, loaded.sampling_rate)
        plain_loop(loaded, audio, spec["window"], spec["stride"], spec["batch_size"])
    return loaded_at - start, time.perf_counter() - start


def _fresh_peer(spec: dict, heap_env: bool = False) -> dict:
    """The plain loop as a user's script: a fresh process, timed from before its imports;
    ``heap_env``: with the heap settings the node uses, set as glibc's environment variables
    (``bids_w2v.heap.held_environment``)."""
    env = {**os.environ, **(held_environment() if heap_env else {})}
    code = (
        "import time, sys; t0 = time.perf_counter(); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import extraction; extraction.peer_child(t0, sys.argv[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_child(t0: float, spec: str) -> None:
    """Body of :func:`_fresh_peer` (prints its timings as JSON)."""
    imported = time.perf_counter()
    loading, total = _plain_peer(json.loads(spec))
    end = time.perf_counter()
    print(json.dumps({"total": end - t0, "imports": imported - t0, "loading": loading}))


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
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best kept)")
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[1.0, 10.0])
    parser.add_argument("--rss-model", choices=["base", "narrow"], default="base")
    parser.add_argument("--no-timing", action="store_true", help="only the memory runs")
    parser.add_argument("--rss-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--default-heap",
        action="store_true",
        help="memory runs with glibc's default heap (default: kept as the extraction node "
        "keeps it, bids_w2v.heap.retained_heap)",
    )
    parser.add_argument(
        "--participant", action="store_true", help="a participant run with default flags"
    )
    parser.add_argument("--clip", type=float, default=0.0, help="--participant: seconds (0: all)")
    parser.add_argument("--participant-runs", type=int, default=1, help="--participant: runs")
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args)
        return
    if args.participant:
        run_participant(args)
        return
    print(
        f"model {args.model} ({'trained' if args.pretrained else 'random init'}), all layers, "
        f"torch {torch.__version__} with {args.threads} threads, windows {args.window:g} s "
        f"every {args.stride:g} s, batch {args.batch_size}, timing on {args.seconds:g} s of audio",
        flush=True,
    )
    # memory first: on Linux a child's ru_maxrss starts from its parent's resident size
    for minutes in args.rss_minutes:
        run_rss(args, minutes)
    if not args.no_timing:
        run_timing(args)


if __name__ == "__main__":
    main()
