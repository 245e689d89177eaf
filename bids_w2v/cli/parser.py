"""Command-line parser (BIDS-Apps convention, fMRIPrep/FitLins flag names)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.config import (
    DEFAULT_CONFOUNDS,
    DEFAULT_MODEL,
    DEFAULT_SPACE,
    CleaningSettings,
    DesignSettings,
    EncodingSettings,
    FeatureSettings,
    GroupSettings,
    InputSettings,
    ModelSpec,
    RunConfig,
    default,
)

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


def _fdr_level(value: str) -> float:
    level = float(value)
    if not 0 < level < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return level


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def _trim(value: str):
    from bids_w2v.bold.confounds import parse_trim

    try:
        return parse_trim(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _high_pass(value: str) -> float:
    from bids_w2v.bold.confounds import parse_high_pass

    try:
        return parse_high_pass(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        f"(fMRIPrep's notation, e.g. {DEFAULT_SPACE}:res-2; default {DEFAULT_SPACE}). "
        "fsaverage, fsaverage5, fsaverage6 or fsnative model the GIfTI surfaces (both "
        "hemispheres; maps written as .func.gii per hemisphere), fsLR the CIFTI dense time "
        "series (den-91k; maps written as .dscalar.nii)",
    )
    g.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        action="store_true",
        help="index every file, even names that are not valid BIDS",
    )
    g.add_argument(
        "--desc-label",
        default=default(InputSettings, "desc_label"),
        metavar="LABEL",
        help="desc- label of the preprocessed BOLD (FitLins' flag; default %(default)s, "
        "fMRIPrep's; e.g. clean for Narratives' afni-nosmooth derivatives, which implies "
        "--confounds-strategy none unless one is given)",
    )
    g.add_argument(
        "--bids-filter-file",
        "--bids_filter_file",
        type=Path,
        metavar="FILE",
        help="JSON of pybids filters per query, fMRIPrep's format, e.g. "
        '{"bold": {"session": "01"}}; keys: bold, mask, confounds, events',
    )
    g.add_argument(
        "--stimulus-map",
        type=Path,
        metavar="TSV",
        help="for datasets without events.tsv (Le Petit Prince): a TSV of entity columns "
        "(task, run, session, subject) then stim_file and onset, one row per presentation "
        "(see docs/reproduce-millet-2022.md)",
    )
    g.add_argument(
        "--mask",
        type=Path,
        metavar="PATH",
        help="brain mask on the BOLD grid for every run (default: the derivatives' "
        "desc-brain_mask, or one computed from the BOLD by nilearn when there is none)",
    )
    g.add_argument(
        "--dropped-scans",
        type=_non_negative_int,
        default=default(InputSettings, "dropped_scans"),
        metavar="N",
        help="volumes the preprocessing removed from the start of every run (Le Petit "
        "Prince's AFNI derivatives: 4); onsets are moved N x TR earlier (default %(default)s)",
    )

    g = parser.add_argument_group("Speech model and features")
    g.add_argument(
        "--model",
        nargs="+",
        action="extend",
        default=None,
        metavar="MODEL",
        help="Hugging Face model id (from the local cache unless --allow-download) or a "
        f"folder written by save_pretrained (default {DEFAULT_MODEL}). Several models (given "
        "after one --model or repeated) are extracted and scored separately, their maps kept "
        "apart by desc-<model><Layer>; append ':random' to a model for its random-init twin, "
        f"e.g. --model {DEFAULT_MODEL} {DEFAULT_MODEL}:random",
    )
    g.add_argument(
        "--random-init",
        action="store_true",
        help="every --model with random, seeded weights: the paper's untrained baseline "
        "(works offline for wav2vec2-base and wav2vec2-large from configs shipped with "
        "bids-w2v); the maps are labelled <model>Random",
    )
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let transformers download the model (default: offline, never any network)",
    )
    g.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept a model folder that only has pickle weights (*.bin, *.pt): they are then "
        "read with torch's weights-only loader, which refuses code objects. Default: only "
        "*.safetensors weights are read; convert a trusted checkpoint once with save_pretrained "
        "rather than using this flag",
    )
    g.add_argument(
        "--layers",
        default=default(FeatureSettings, "layers"),
        help="layers to score: 'all' (default; conv0-conv6 and transformer0-transformer11 for "
        "a base model), names, ranges (transformer0-transformer5) or depth indices",
    )
    g.add_argument(
        "--window",
        dest="window_s",
        type=float,
        default=default(FeatureSettings, "window_s"),
        metavar="SECONDS",
        help="window fed to the model (default %(default)s s, the paper's)",
    )
    g.add_argument(
        "--stride",
        dest="stride_s",
        type=float,
        default=default(FeatureSettings, "stride_s"),
        metavar="SECONDS",
        help="stride between windows; overlapping frames are averaged (default %(default)s s)",
    )
    g.add_argument(
        "--causal",
        action="store_true",
        help="each frame sees only the past (Antonello et al. 2023): windows of --window "
        "seconds end every --stride seconds and each frame comes from the first window that "
        "holds it, so it sees less than one stride of future audio (e.g. --stride 0.1)",
    )
    g.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=default(FeatureSettings, "dtype"),
        help="precision of the speech model (default %(default)s; bfloat16 runs on CPU and GPU, "
        "float16 on GPU only); features are stored in float32",
    )
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        default=default(FeatureSettings, "batch_size"),
        help="windows per forward pass of the speech model (default %(default)s); lower it to save "
        "memory, raise it on a GPU",
    )
    g.add_argument(
        "--feature-cache",
        type=Path,
        help="folder of the content-addressed feature cache (default WORK_DIR/feature_cache)",
    )
    g.add_argument(
        "--save-features",
        action="store_true",
        help="also write every stimulus' features as derivatives: OUTPUT_DIR/stimuli/"
        "<stimulus>_desc-<model><Layer>_features.npy (frames x units) with JSON sidecars",
    )

    g = parser.add_argument_group("Model of the BOLD signal")
    g.add_argument(
        "--confounds-strategy",
        nargs="+",
        default=None,
        metavar="STRATEGY",
        help="confound regression: a nilearn preset (simple, scrubbing, compcor), nilearn "
        f"load_confounds components (default: {' '.join(DEFAULT_CONFOUNDS)}), or 'none' to use "
        "the BOLD as is (already denoised derivatives; the default with --desc-label other "
        "than preproc)",
    )
    g.add_argument(
        "--dummy-scans",
        type=_non_negative_int,
        default=default(CleaningSettings, "dummy_scans"),
        metavar="N",
        help="drop the first N volumes of every run from BOLD, confounds and design (in "
        "addition to fMRIPrep's non_steady_state_outlier volumes; default %(default)s)",
    )
    g.add_argument(
        "--trim-scans",
        type=_trim,
        default=None,
        metavar="START[:END]|TSV",
        help="drop START volumes at the start (and END at the end) of every run, or per task "
        "from a TSV (columns task [, session, run], start [, end]), as the Narratives "
        "analyses do",
    )
    g.add_argument(
        "--high-pass",
        type=_high_pass,
        default=None,
        metavar="CUTOFF",
        help="Butterworth high-pass filter applied while cleaning: a period (128s) or a "
        "frequency (0.008Hz); bare numbers >= 1 are seconds, < 1 Hz (default: none; the "
        "default confounds already hold fMRIPrep's 128 s cosine regressors)",
    )
    g.add_argument(
        "--hrf",
        dest="hrf_model",
        choices=["glover", "spm", "glover+derivative", "spm+derivative", "fir"],
        default=default(DesignSettings, "hrf_model"),
        help="HRF convolved with every feature (default %(default)s, the paper's); +derivative "
        "adds each feature's time derivative; fir: delayed copies (--fir-delays)",
    )
    g.add_argument(
        "--fir-delays",
        type=_non_negative_int,
        nargs="+",
        default=None,
        metavar="SCANS",
        help="delays in scans of the fir model's copies of every feature (voxelwise "
        "modelling's habit, e.g. 1 2 3 4; required with --hrf fir)",
    )
    g.add_argument(
        "--n-folds",
        type=_positive_int,
        default=default(EncodingSettings, "n_folds"),
        help="outer contiguous, unshuffled cross-validation folds (default %(default)s)",
    )
    g.add_argument(
        "--cv",
        choices=["kfold", "runs"],
        default=default(EncodingSettings, "cv"),
        help="outer cross-validation: 'kfold' (--n-folds contiguous folds over the "
        "concatenated runs, the paper's) or 'runs' (leave one run out)",
    )
    g.add_argument(
        "--cv-gap",
        dest="gap",
        type=_non_negative_int,
        default=default(EncodingSettings, "gap"),
        metavar="SCANS",
        help="drop the training scans within SCANS scans of the test block, so that BOLD "
        "autocorrelation does not leak across the boundary (default %(default)s)",
    )
    g.add_argument(
        "--inner-cv",
        dest="inner",
        choices=["loo", "kfold"],
        default=default(EncodingSettings, "inner"),
        help="per-voxel alpha choice: efficient leave-one-out (default, the paper's) "
        "or 5 inner contiguous folds",
    )
    g.add_argument(
        "--alpha-search",
        choices=["full", "local", "auto"],
        default=default(EncodingSettings, "alpha_search"),
        help="how the inner criterion is searched over the alpha grid: 'full' (default "
        "%(default)s) evaluates every alpha (the exact grid argmin, as scikit-learn and "
        "himalaya); 'local' evaluates it only around the minima of a cheap proxy (GCV for "
        "--inner-cv loo) and descends to a minimum: faster, not exact by construction (nearly "
        "tied layers can swap ranks; speed and agreement in benchmarks/README.md); 'auto': "
        "local with loo, full with kfold",
    )
    g.add_argument(
        "--encoding-backend",
        dest="backend",
        choices=["numpy", "torch"],
        default=default(EncodingSettings, "backend"),
        help="linear algebra backend of the ridge (default %(default)s)",
    )
    g.add_argument(
        "--device",
        default=default(FeatureSettings, "device"),
        help="auto (default: a CUDA GPU when torch sees one, else the CPU), cpu, cuda or "
        "cuda:N; used by the speech model and by --encoding-backend torch",
    )
    g.add_argument(
        "--voxel-chunk",
        type=_positive_int,
        default=default(EncodingSettings, "voxel_chunk"),
        help="voxels fitted at once; bounds memory (default %(default)s)",
    )
    g.add_argument(
        "--features-pca",
        type=_positive_int,
        metavar="N",
        help="replace each layer's standardised features by their first N principal "
        "components, fitted on each training fold only and applied to its test fold "
        "(default: no PCA)",
    )

    g = parser.add_argument_group("Group level")
    g.add_argument(
        "--fdr-q",
        type=_fdr_level,
        default=default(GroupSettings, "fdr_q"),
        metavar="Q",
        help="Benjamini-Hochberg FDR level of the thresholded group maps (default %(default)s)",
    )
    g.add_argument(
        "--roi-atlas",
        metavar="PATH|templateflow:ATLAS[:DESC]",
        help="label image in the maps' space (0 = background; resampled by nearest neighbour "
        "if on another grid; on surfaces the hemi-L GIfTI label file of a pair, on CIFTI a "
        ".dlabel.nii), names in a TSV beside it (columns index, name), or a TemplateFlow atlas "
        "of the --space template found offline in TEMPLATEFLOW_HOME (e.g. "
        "templateflow:HarvardOxford:cort-maxprob-thr25): adds the regions to the group ROI "
        "table and report",
    )
    g.add_argument(
        "--noise-ceiling",
        action=argparse.BooleanOptionalAction,
        default=default(GroupSettings, "noise_ceiling"),
        help="estimate each participant's noise ceiling from the others who heard the same "
        "stimuli and write ceiling-normalised group scores (default: on)",
    )
    g.add_argument(
        "--reports-only",
        action="store_true",
        help="only regenerate the HTML reports from the existing outputs (no fitting)",
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
        default=default(RunConfig, "nprocs"),
        help="processes run in parallel by Nipype (default %(default)s)",
    )
    g.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        default=default(RunConfig, "omp_nthreads"),
        help="threads of each process (torch, BLAS; default %(default)s)",
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
        "--use-plugin",
        "--use_plugin",
        type=Path,
        metavar="FILE",
        help="Nipype plugin file as fMRIPrep reads it (YAML: 'plugin: SLURM' and "
        "'plugin_args: {...}'; any Nipype plugin, see docs/hpc.md). Default: Linear with "
        "--nprocs 1, MultiProc otherwise",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=default(ModelSpec, "seed"),
        help="random seed (random-init weights); same seed, same results (default %(default)s)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="count",
        default=default(RunConfig, "verbosity"),
        help="more output (-v progress bars, -vv Nipype logs)",
    )

    g = parser.add_argument_group("Other options")
    g.add_argument(
        "--write-graph",
        action="store_true",
        help="write the workflow graph to WORK_DIR/<workflow>/graph.dot (and graph.svg when "
        "Graphviz's dot is installed), then run",
    )
    g.add_argument(
        "--stop-on-first-crash",
        action="store_true",
        help="stop at the first failing node (default: run every node that does not depend "
        "on it, then report the failure)",
    )
    g.add_argument(
        "--notrack",
        action="store_true",
        help="accepted for fMRIPrep compatibility: bids-w2v never sends telemetry or usage "
        "data (Nipype's version check is off too)",
    )
    return parser
