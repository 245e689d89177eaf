"""The analysis options of the command line: the BOLD model, cross-validation, group level.

Every destination is a field of :mod:`bids_w2v.config` and every default is read from it.
"""

from __future__ import annotations

import argparse

from bids_w2v.cli.arguments import (
    fdr_level,
    high_pass,
    non_negative_int,
    positive_int,
    slice_time_ref,
    trim,
)
from bids_w2v.config import (
    DEFAULT_CONFOUNDS,
    CleaningSettings,
    DesignSettings,
    EncodingSettings,
    FeatureSettings,
    GroupSettings,
    default,
)


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Add the "Model of the BOLD signal" and "Group level" option groups to ``parser``."""
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
        type=non_negative_int,
        default=default(CleaningSettings, "dummy_scans"),
        metavar="N",
        help="drop the first N volumes of every run from BOLD, confounds and design (in "
        "addition to fMRIPrep's non_steady_state_outlier volumes; default %(default)s)",
    )
    g.add_argument(
        "--trim-scans",
        type=trim,
        default=None,
        metavar="START[:END]|TSV",
        help="drop START volumes at the start (and END at the end) of every run, or per task "
        "from a TSV (columns task [, session, run], start [, end]), as the Narratives "
        "analyses do",
    )
    g.add_argument(
        "--high-pass",
        type=high_pass,
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
        type=non_negative_int,
        nargs="+",
        default=None,
        metavar="SCANS",
        help="delays in scans of the fir model's copies of every feature (voxelwise "
        "modelling's habit, e.g. 1 2 3 4; required with --hrf fir)",
    )
    g.add_argument(
        "--slice-time-ref",
        type=slice_time_ref,
        default=default(DesignSettings, "slice_time_ref"),
        metavar="auto|FRACTION",
        help="time within each TR that a scan represents, as a fraction of the TR (nilearn's "
        "slice_time_ref: scan i at (i + FRACTION) * TR); auto (default) reads StartTime / "
        "RepetitionTime from each run's preprocessed BOLD sidecar when it says "
        "SliceTimingCorrected (fMRIPrep: the middle of the acquisition) and uses 0 (the start "
        "of the TR, the authors' i * TR) otherwise, saying so in the log",
    )
    g.add_argument(
        "--n-folds",
        type=positive_int,
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
        type=non_negative_int,
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
        choices=["exact", "full", "local", "auto"],
        default=default(EncodingSettings, "alpha_search"),
        help="how the inner criterion is searched over the alpha grid (default "
        "%(default)s): 'exact' returns the alpha of 'full' for every fold and voxel, by "
        "construction, evaluating the criterion only where bounds cannot rule an alpha out; "
        "'full' evaluates every alpha (the reference, as scikit-learn and himalaya); 'local' "
        "and 'auto' are retired names of 'exact'",
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
        type=positive_int,
        default=default(EncodingSettings, "voxel_chunk"),
        help="voxels fitted at once; bounds memory (default %(default)s)",
    )
    g.add_argument(
        "--participant-stats",
        action=argparse.BooleanOptionalAction,
        default=default(EncodingSettings, "participant_stats"),
        help="per-voxel significance of each participant's brain scores: one-sided test of "
        "each outer fold's r with Bartlett's effective degrees of freedom (autocorrelation of "
        "prediction and BOLD), Bonferroni over folds, Benjamini-Hochberg FDR over voxels; "
        "writes stat-p, stat-q and stat-rthresh (q < 0.05) maps per layer (default: on; "
        "--no-participant-stats saves the time)",
    )
    g.add_argument(
        "--features-pca",
        type=positive_int,
        metavar="N",
        help="replace each layer's standardised features by their first N principal "
        "components, fitted on each training fold only and applied to its test fold "
        "(default: no PCA)",
    )
    g.add_argument(
        "--joint",
        nargs="+",
        metavar="SPACE",
        help="also fit one banded-ridge model of several feature spaces, each MODEL:LAYER "
        "(e.g. wav2vec2base:transformer6) or MODEL for a single-layer model (e.g. mel), MODEL "
        "being a --model of the run or its label: one regularisation per space and voxel "
        "(himalaya's random search), and variance partitioning: the joint model's held-out r2 "
        "and each space's unique part (joint minus the model without it) and the shared part, "
        "as maps (default: none)",
    )
    g.add_argument(
        "--joint-n-iter",
        type=positive_int,
        metavar="N",
        default=default(EncodingSettings, "joint_n_iter"),
        help="weightings of the feature spaces tried by the random search of --joint (the "
        "uniform one, then Dirichlet draws; default %(default)s)",
    )
    g.add_argument(
        "--joint-seed",
        type=int,
        metavar="SEED",
        default=default(EncodingSettings, "joint_seed"),
        help="random seed of the --joint search (default %(default)s)",
    )
    g.add_argument(
        "--joint-solver",
        choices=["loo", "himalaya"],
        default=default(EncodingSettings, "joint_solver"),
        help="how --joint scores each weighting of the spaces and each alpha on a training "
        "fold: 'loo', efficient leave-one-out from one SVD per weighting, the single fits' "
        "algebra (much faster on CPUs); 'himalaya', himalaya's GroupRidgeCV with 5 contiguous "
        "inner folds (the reference implementation). Both search the same weightings and "
        "alphas (default %(default)s)",
    )

    g = parser.add_argument_group("Group level")
    g.add_argument(
        "--fdr-q",
        type=fdr_level,
        default=default(GroupSettings, "fdr_q"),
        metavar="Q",
        help="Benjamini-Hochberg FDR level of the thresholded group maps; with --group-test "
        "permutation, their family-wise error level (default %(default)s)",
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
        "--noise-ceiling-method",
        choices=("paper", "voxelwise"),
        default=default(GroupSettings, "noise_ceiling_method"),
        help="paper: the authors' ceiling (PCA with 100 components of the participant and of "
        "the mean of the others, RidgeCV from the others' components to the participant's, "
        "10 unshuffled folds, Pearson r over the whole series); voxelwise: each voxel "
        "predicted from the same voxel of the others' mean by least squares on the encoding's "
        "outer folds (default %(default)s)",
    )
    g.add_argument(
        "--group-test",
        choices=("wilcoxon", "permutation"),
        default=default(GroupSettings, "group_test"),
        help="test of each voxel across participants: wilcoxon (the paper's two-sided "
        "signed-rank test, Benjamini-Hochberg FDR over voxels, maps thresholded at q < "
        "--fdr-q) or permutation (two-sided sign-flip permutation test of the one-sample t with "
        "nilearn's permuted_ols, max-statistic family-wise error correction over voxels, maps "
        "thresholded at FWE-corrected p < --fdr-q) (default %(default)s)",
    )
    g.add_argument(
        "--n-permutations",
        type=positive_int,
        metavar="N",
        default=default(GroupSettings, "n_permutations"),
        help="sign flips of --group-test permutation (default %(default)s)",
    )
    g.add_argument(
        "--permutation-seed",
        type=int,
        metavar="SEED",
        default=default(GroupSettings, "permutation_seed"),
        help="random seed of --group-test permutation (default %(default)s)",
    )
    g.add_argument(
        "--reports-only",
        action="store_true",
        help="only regenerate the HTML reports from the existing outputs (no fitting)",
    )
