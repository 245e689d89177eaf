"""Command-line parser (BIDS-Apps convention, fMRIPrep/FitLins flag names)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.config import DEFAULT_MODEL, DEFAULT_SPACE

DESCRIPTION = f"""\
bids-w2v {__version__}: how well does each layer of a self-supervised speech model
(wav2vec 2.0 by default) predict fMRI responses to natural speech? A reproducible
implementation of Millet, Caucheteux et al. (NeurIPS 2022) as a BIDS-App.

Inputs: a raw BIDS dataset whose events.tsv files name the audio participants heard
(column stim_file, relative to stimuli/), and its fMRIPrep derivatives. For every stimulus,
every model layer's activations (10 s windows, 5 s stride) are convolved with the Glover HRF;
a ridge regression per voxel (alpha chosen among 20 values by nested leave-one-out) is
cross-validated on 5 contiguous folds, and each voxel's brain score is the Pearson r between
predicted and held-out BOLD.

Typical use:
  bids-w2v /data/ds /data/ds/derivatives/bids-w2v participant --participant-label 01 02
  bids-w2v /data/ds /data/ds/derivatives/bids-w2v group
"""

EPILOG = """\
Outputs (BIDS derivatives): sub-<label>/func/*_desc-<model><Layer>_stat-r_statmap.nii.gz
(brain score per layer, JSON sidecar with every setting), *_stat-peaklayer_statmap.nii.gz
(best layer per voxel), *_stat-alpha_statmap.nii.gz; the group level writes task-*_statmap.nii.gz
at the top of OUTPUT_DIR (as FitLins does).
The configuration is recorded in OUTPUT_DIR/logs/. Cite: Millet, Caucheteux et al. (2022),
Toward a realistic model of speech processing in the brain with self-supervised learning.
"""


def _derivative(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep:
        return "fmriprep", Path(value)
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def _memory_gb(value: str) -> float:
    """Parse fMRIPrep's ``--mem`` (MB by default, or with a KB/MB/GB/TB unit) into GB."""
    units = {"k": 1e-6, "m": 1e-3, "g": 1.0, "t": 1e3}
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    scale = units["m"]
    if text and text[-1] in units:
        scale, text = units[text[-1]], text[:-1]
    try:
        amount = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory size: {value!r} (e.g. 16GB)") from None
    if amount <= 0:
        raise argparse.ArgumentTypeError(f"memory must be positive, got {value!r}")
    return amount * scale


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Build the ``bids-w2v`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="bids-w2v",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="root of the raw BIDS dataset")
    parser.add_argument(
        "output_dir",
        type=Path,
        help="where derivatives are written (e.g. BIDS_DIR/derivatives/bids-w2v)",
    )
    parser.add_argument(
        "analysis_level",
        choices=["participant", "group"],
        help="'participant': brain scores of each participant; 'group': combine them",
    )
    parser.add_argument("--version", action="version", version=f"bids-w2v {__version__}")

    g = parser.add_argument_group("Selecting data")
    g.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="participants to analyse, with or without 'sub-' (default: all)",
    )
    g.add_argument(
        "--task", "--task-id", dest="task", help="task to analyse (default: the only one)"
    )
    g.add_argument(
        "-d",
        "--derivatives",
        action="append",
        type=_derivative,
        default=[],
        metavar="fmriprep=PATH",
        help="fMRIPrep derivatives (default: BIDS_DIR/derivatives/fmriprep); NAME=PATH or PATH",
    )
    g.add_argument(
        "--space",
        default=DEFAULT_SPACE,
        help="output space of the fMRIPrep BOLD to model, optionally with a resolution "
        f"(fMRIPrep's notation, e.g. {DEFAULT_SPACE}:res-2; default {DEFAULT_SPACE})",
    )
    g.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        action="store_true",
        help="index every file, even names that are not valid BIDS",
    )

    g = parser.add_argument_group("Speech model and features")
    g.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="Hugging Face model id (from the local cache unless --allow-download) or a "
        f"folder written by save_pretrained (default {DEFAULT_MODEL})",
    )
    g.add_argument(
        "--random-init",
        action="store_true",
        help="same architecture with random, seeded weights: the paper's untrained baseline "
        "(works offline for wav2vec2-base from a config shipped with bids-w2v)",
    )
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let transformers download the model (default: offline, never any network)",
    )
    g.add_argument(
        "--layers",
        default="all",
        help="layers to score: 'all' (default; conv0-conv6 and transformer0-transformer11 for "
        "a base model), names, ranges (transformer0-transformer5) or depth indices",
    )
    g.add_argument(
        "--window",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="window fed to the model (default 10 s, the paper's)",
    )
    g.add_argument(
        "--stride",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="stride between windows; overlapping frames are averaged (default 5 s)",
    )
    g.add_argument(
        "--feature-cache",
        type=Path,
        help="folder of the content-addressed feature cache (default WORK_DIR/feature_cache)",
    )

    g = parser.add_argument_group("Model of the BOLD signal")
    g.add_argument(
        "--confounds-strategy",
        nargs="+",
        default=["motion", "wm_csf", "high_pass"],
        metavar="STRATEGY",
        help="nilearn load_confounds strategy (default: motion wm_csf high_pass; 'none' to "
        "use the BOLD as is)",
    )
    g.add_argument(
        "--hrf",
        dest="hrf_model",
        choices=["glover", "spm"],
        default="glover",
        help="HRF convolved with every feature (default glover, the paper's)",
    )
    g.add_argument(
        "--n-folds",
        type=_positive_int,
        default=5,
        help="outer contiguous, unshuffled cross-validation folds (default 5)",
    )
    g.add_argument(
        "--cv",
        choices=["kfold", "runs"],
        default="kfold",
        help="outer cross-validation: 'kfold' (--n-folds contiguous folds over the "
        "concatenated runs, the paper's) or 'runs' (leave one run out)",
    )
    g.add_argument(
        "--cv-gap",
        type=int,
        default=0,
        metavar="SCANS",
        help="drop the training scans within SCANS scans of the test block, so that BOLD "
        "autocorrelation does not leak across the boundary (default 0)",
    )
    g.add_argument(
        "--inner-cv",
        dest="inner",
        choices=["loo", "kfold"],
        default="loo",
        help="per-voxel alpha choice: efficient leave-one-out (default, the paper's) "
        "or 5 inner contiguous folds",
    )
    g.add_argument(
        "--encoding-backend",
        choices=["numpy", "torch"],
        default="numpy",
        help="linear algebra backend of the ridge (default numpy)",
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda, for the torch backend")
    g.add_argument(
        "--voxel-chunk",
        type=_positive_int,
        default=20000,
        help="voxels fitted at once; bounds memory (default 20000)",
    )

    g = parser.add_argument_group("Resources and run control")
    g.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        help="Nipype working folder; re-running with the same one resumes (default ./work)",
    )
    g.add_argument(
        "--nprocs",
        "--nthreads",
        "--n_cpus",
        dest="nprocs",
        type=_positive_int,
        default=1,
        help="processes run in parallel by Nipype (default 1)",
    )
    g.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        default=1,
        help="threads of each process (torch, BLAS; default 1)",
    )
    g.add_argument(
        "--mem",
        "--mem_mb",
        "--mem-mb",
        dest="mem_gb",
        type=_memory_gb,
        metavar="MEMORY",
        help="upper bound of the memory used by parallel processes, as fMRIPrep takes it: a "
        "number of MB, or with a unit (16GB, 16000MB)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed (random-init weights); same seed, same results (default 0)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more output (-v progress bars, -vv Nipype logs)",
    )
    return parser
