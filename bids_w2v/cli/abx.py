"""``bids-w2v-abx``: ABX phone discrimination of speech-model layers (the paper's behavioural
test), with the BIDS-App's models, layers and feature cache."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.abx.dtw import DISTANCES
from bids_w2v.abx.features import LOGMEL, MODEL_INPUTS
from bids_w2v.abx.run import AbxSettings
from bids_w2v.abx.score import MODES
from bids_w2v.cli.arguments import positive_int
from bids_w2v.config import default
from bids_w2v.errors import BidsW2VError, write_error

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``bids-w2v-abx`` argument parser (defaults read from :class:`AbxSettings`)."""
    parser = argparse.ArgumentParser(
        prog="bids-w2v-abx",
        description="ABX phone discrimination (ON phone, BY context, within and across "
        "speaker; ZeroSpeech averaging) of every layer of speech models, optionally compared "
        "with human listeners' accuracy per contrast.",
    )
    parser.add_argument(
        "items",
        type=Path,
        metavar="ITEMS",
        help="ZeroSpeech/ABXpy item file: '#file onset offset #phone "
        "prev-phone next-phone speaker' header, then one item per line",
    )
    parser.add_argument(
        "audio_dir",
        type=Path,
        metavar="AUDIO_DIR",
        help="folder of the items' audio, <file>.wav (or .flac, .ogg, .mp3)",
    )
    parser.add_argument(
        "output_dir",
        type=Path,
        metavar="OUTPUT_DIR",
        help="where the TSVs, JSON sidecars, figure and HTML report go",
    )
    parser.add_argument("--version", action="version", version=f"bids-w2v {__version__}")
    g = parser.add_argument_group("Models")
    g.add_argument(
        "--model",
        nargs="+",
        action="extend",
        required=True,
        metavar="MODEL",
        help="folder written by save_pretrained or Hugging Face id (local cache unless "
        f"--allow-download); '{LOGMEL}' is the model-free log-mel baseline; append ':random' "
        "for a random-init twin, e.g. --model facebook/wav2vec2-base wav2vec2-base:random logmel",
    )
    g.add_argument(
        "--random-init", action="store_true", help="every --model with random, seeded weights"
    )
    g.add_argument(
        "--layers",
        default="all",
        help="layers: 'all' (default), names, ranges (transformer0-transformer5) "
        "or depth indices, as bids-w2v --layers",
    )
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let transformers download the model (default: offline)",
    )
    g.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle-only weights (read with torch's weights-only loader)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=default(AbxSettings, "seed"),
        help="seed of random-init weights and of the bootstrap (default %(default)s)",
    )
    g = parser.add_argument_group("Features")
    g.add_argument(
        "--model-input",
        choices=MODEL_INPUTS,
        default=default(AbxSettings, "model_input"),
        help="what the model sees: 'file' (default) the whole audio file of the item, the "
        "item's frames being cut from it (ZeroSpeech; with one file per stimulus, as "
        "Perceptimatic, the model sees the stimulus as in the paper); 'item' only the item's "
        "span",
    )
    g.add_argument(
        "--window",
        dest="window_s",
        type=float,
        default=default(AbxSettings, "window_s"),
        metavar="SECONDS",
        help="extraction window, as bids-w2v (default %(default)s s)",
    )
    g.add_argument(
        "--stride",
        dest="stride_s",
        type=float,
        default=default(AbxSettings, "stride_s"),
        metavar="SECONDS",
        help="stride between windows (default %(default)s s)",
    )
    g.add_argument(
        "--batch-size",
        type=positive_int,
        default=default(AbxSettings, "batch_size"),
        help="windows per forward pass (default %(default)s)",
    )
    g.add_argument(
        "--device",
        default=default(AbxSettings, "device"),
        help="torch device of the model and the DTW: cpu, cuda, auto (default %(default)s)",
    )
    g.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=default(AbxSettings, "dtype"),
        help="precision of the model (default %(default)s)",
    )
    g.add_argument(
        "--feature-cache",
        type=Path,
        help="content-addressed feature cache, shareable with bids-w2v's "
        "(default OUTPUT_DIR/feature_cache)",
    )
    g = parser.add_argument_group("Scoring")
    g.add_argument(
        "--speaker-mode",
        dest="modes",
        nargs="+",
        choices=MODES,
        default=list(default(AbxSettings, "modes")),
        help="speaker conditions (default: within across)",
    )
    g.add_argument(
        "--distance",
        dest="distances",
        nargs="+",
        choices=sorted(DISTANCES),
        default=list(default(AbxSettings, "distances")),
        help="frame distances; the figure uses the first (default: cosine angular)",
    )
    g.add_argument(
        "--human-results",
        type=Path,
        metavar="TSV",
        help="human accuracy per triplet or contrast: columns phone_a, phone_b, "
        "accuracy, optionally native (1/0)",
    )
    g.add_argument(
        "--n-boot",
        type=positive_int,
        default=default(AbxSettings, "n_boot"),
        help="bootstrap resamples of the correlation (default %(default)s)",
    )
    return parser


def _models(values: Sequence[str], random_init: bool) -> list[tuple[str, bool]]:
    """(name, random weights) per --model value; the log-mel baseline has no weights."""
    from bids_w2v.cli.build import split_model

    return [split_model(value, random_init and value != LOGMEL) for value in values]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids-w2v-abx``; return the exit code (0 on success).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, non-zero with a one-paragraph message on stderr otherwise.
    """
    from bids_w2v.cli.run import prepare_environment

    args = build_parser().parse_args(argv)
    prepare_environment(args.allow_download)
    from bids_w2v.abx.run import run_abx

    settings = AbxSettings(
        modes=tuple(dict.fromkeys(args.modes)),
        distances=tuple(dict.fromkeys(args.distances)),
        model_input=args.model_input,
        window_s=args.window_s,
        stride_s=args.stride_s,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        allow_download=args.allow_download,
        allow_pickle=args.allow_pickle,
        n_boot=args.n_boot,
    )
    try:
        written = run_abx(
            args.items,
            args.audio_dir,
            args.output_dir,
            _models(args.model, args.random_init),
            layers=args.layers,
            settings=settings,
            cache_dir=args.feature_cache,
            human_path=args.human_results,
        )
    except BidsW2VError as exc:
        print(f"bids-w2v-abx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        error = write_error(exc.filename, exc.strerror or str(exc))
        print(f"bids-w2v-abx: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("bids-w2v-abx: interrupted.", file=sys.stderr)
        return 130
    report = Path(args.output_dir) / "abx_report.html"
    print(f"bids-w2v-abx: done; {len(written)} files and the report {report}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
