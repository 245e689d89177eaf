"""Command-line parser (BIDS-Apps convention, fMRIPrep/FitLins flag names)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.cli.arguments import (
    derivative,
    memory_gb,
    non_negative_int,
    positive_int,
)
from bids_w2v.cli.options import add_analysis_options
from bids_w2v.config import (
    DEFAULT_MODEL,
    DEFAULT_SPACE,
    FeatureSettings,
    InputSettings,
    ModelSpec,
    RunConfig,
    default,
)
from bids_w2v.resources import describe_cpus, describe_memory

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


class MachineDefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text that adds, to the options marked with :func:`machine_default`, the value their
    default resolves to on this machine (computed when ``--help`` is printed, so that the
    Boutiques descriptor, built from the plain help strings, is the same on every machine)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        describe = getattr(action, "machine_default", None)
        if describe is None:
            return text
        return f"{text} ({describe().replace('%', '%%')})"


def machine_default(action: argparse.Action, describe) -> argparse.Action:
    """Mark an option whose ``--help`` shows ``describe()``, its default on this machine."""
    action.machine_default = describe
    return action


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
        formatter_class=MachineDefaultsFormatter,
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
        "--task",
        "--task-id",
        dest="task",
        nargs="+",
        default=[],
        metavar="TASK",
        help="tasks fitted jointly, runs concatenated in alphabetical order of the tasks "
        "(default: every task whose events name audio, i.e. every story a participant heard); "
        "group level: each participant's map whose tasks are all among these",
    )
    g.add_argument(
        "-d",
        "--derivatives",
        action="append",
        type=derivative,
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
        type=non_negative_int,
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
        f"e.g. --model {DEFAULT_MODEL} {DEFAULT_MODEL}:random. Encoders: wav2vec2, HuBERT, "
        "WavLM, data2vec-audio, wav2vec2-conformer, Whisper (its encoder; --window at most its "
        "30 s context) and w2v-BERT 2.0; 'mel' (40-band log-mel, 10 ms hop) and 'envelope' "
        "(broadband amplitude envelope) are model-free acoustic baselines",
    )
    g.add_argument(
        "--features-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="also score precomputed features: DIR holds <stimulus>_desc-<label>_features.npy "
        "(frames x units) with a JSON sidecar giving FrameRate, laid out like stimuli/ (the "
        "files --save-features writes in OUTPUT_DIR/stimuli); each label (or sidecar "
        "ModelLabel) is a feature space scored like a model. Without --model only these",
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
        type=positive_int,
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

    add_analysis_options(parser)

    g = parser.add_argument_group("Resources and run control")
    g.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        help="Nipype working folder; re-running with the same one resumes (default ./work)",
    )
    machine_default(
        g.add_argument(
            "--nprocs",
            "--nthreads",
            "--n_cpus",
            dest="nprocs",
            type=positive_int,
            default=default(RunConfig, "nprocs"),
            help="processes run in parallel by Nipype (default: the CPUs this process may use, "
            "the smallest of its CPU affinity, cgroup CPU quota and SLURM_CPUS_PER_TASK)",
        ),
        describe_cpus,
    )
    g.add_argument(
        "--omp-nthreads",
        type=positive_int,
        default=default(RunConfig, "omp_nthreads"),
        help="threads of each process that runs beside others (torch, BLAS; default "
        "min(nprocs - 1, 8) as fMRIPrep, nprocs with one CPU or the Linear plugin); the "
        "feature extraction, which runs alone, uses all --nprocs threads",
    )
    machine_default(
        g.add_argument(
            "--mem",
            "--mem_mb",
            "--mem-mb",
            dest="mem_gb",
            type=memory_gb,
            default=default(RunConfig, "mem_gb"),
            metavar="MEMORY",
            help="upper bound of the memory used by parallel processes, as fMRIPrep takes it: a "
            "number of MB, or with a unit (16GB, 16000MB); default: the memory available, the "
            "smallest of the cgroup limit, MemAvailable and SLURM's allocation",
        ),
        describe_memory,
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
        help="more output (-v Nipype's warnings, -vv Nipype's log); by default the progress "
        "(nodes done of total; bars with rate and time left inside the feature extraction and "
        "the fits) is shown, one line per step when stderr is not a terminal (SLURM logs)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        help="no progress and no messages, errors only",
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
