"""A citable methods paragraph generated from the run's own configuration (like fMRIPrep's)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np

from bids_w2v import __version__
from bids_w2v.config import RunConfig
from bids_w2v.features.acoustic import ACOUSTIC_DESCRIPTIONS
from bids_w2v.features.scan_timing import SliceTimeRef
from bids_w2v.outputs.metadata import (
    bold_only_clause,
    hrf_clause,
    scan_time_clause,
    trimming_clause,
)
from bids_w2v.reports.bibtex import BIBTEX  # noqa: F401  (re-exported)
from bids_w2v.reports.model_refs import MODEL_REFERENCES, model_reference

REFERENCES = {
    "millet2022": "Millet, J., Caucheteux, C., Orhan, P., Boubenec, Y., Gramfort, A., Dunbar, E., "
    "Pallier, C., & King, J.-R. (2022). Toward a realistic model of speech processing in the "
    "brain with self-supervised learning. Advances in Neural Information Processing Systems 35.",
    "baevski2020": "Baevski, A., Zhou, Y., Mohamed, A., & Auli, M. (2020). wav2vec 2.0: A "
    "framework for self-supervised learning of speech representations. Advances in Neural "
    "Information Processing Systems 33.",
    "nilearn": "Abraham, A., et al. (2014). Machine learning for neuroimaging with "
    "scikit-learn. Frontiers in Neuroinformatics 8, 14.",
    "nipype": "Gorgolewski, K., et al. (2011). Nipype: a flexible, lightweight and extensible "
    "neuroimaging data processing framework in Python. Frontiers in Neuroinformatics 5, 13.",
    "pybids": "Yarkoni, T., et al. (2019). PyBIDS: Python tools for BIDS datasets. Journal of "
    "Open Source Software 4(40), 1294.",
    "transformers": "Wolf, T., et al. (2020). Transformers: State-of-the-art natural language "
    "processing. Proceedings of EMNLP 2020: System Demonstrations, 38-45.",
}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def methods_boilerplate(
    config: RunConfig,
    *,
    n_subjects: int,
    n_runs: int,
    task: str,
    slice_time_refs: Sequence[SliceTimeRef] | None = None,
) -> str:
    """Describe the analysis as a methods section, with references (Markdown).

    Parameters
    ----------
    config : RunConfig
        The run's configuration: every number in the text comes from it.
    n_subjects, n_runs : int
        How many participants and runs were analysed.
    task : str
        The task analysed, or several joined by ", " (fitted jointly).
    slice_time_refs : sequence of SliceTimeRef, optional
        The slice-time reference each run got (:mod:`bids_w2v.features.scan_timing`); without
        them the ``--slice-time-ref`` setting is described.

    Returns
    -------
    str
        Markdown text to paste into a paper (and to cite from).
    """
    feat, design, enc = config.features, config.design, config.encoding

    def weights(model) -> str:
        if model.random_init:
            seed = model.seed
            return f"with random weights (seed {seed}; the untrained baseline of [@millet2022])"
        return "with its pretrained weights"

    def what(model) -> str:  # the acoustic baselines and precomputed features have no weights
        if model.features_dir is not None:
            return f"`{model.name}` (precomputed features read from `{model.features_dir}`)"
        if model.name in ACOUSTIC_DESCRIPTIONS:
            return f"`{model.name}` ({ACOUSTIC_DESCRIPTIONS[model.name]})"
        return f"`{model.name}` [@{model_reference(model.name)}] {weights(model)}"

    described = [what(m) for m in config.models]
    speech_models = (
        f"the speech model {described[0]}"
        if len(described) == 1
        else f"each of the speech models {'; '.join(described)}"
    )
    causal = (
        f", causally (each frame computed from the window of at most {feat.window_s:g} s that "
        "ends right after it, as in Antonello et al., 2023: no frame sees more than one stride "
        "of future audio)"
        if feat.causal
        else ""
    )
    windows = (
        f"in windows of {feat.window_s:g} s with a stride of {feat.stride_s:g} s, averaging "
        "the frames that overlapping windows share"
        if feat.window_s
        else "in a single pass over each stimulus"
    )
    lo, hi = np.log10(min(enc.alphas)), np.log10(max(enc.alphas))
    layers = "every layer" if feat.layers == "all" else f"the layers {feat.layers}"
    strategy = ", ".join(config.cleaning.confounds_strategy)
    confounds = (
        "was used as preprocessed"
        if strategy in ("", "none")
        else f"was cleaned of the fMRIPrep confounds selected by nilearn's `load_confounds` "
        f"strategy ({strategy}) [@nilearn]"
    )
    normalisation = (
        "normalised to zero mean and unit variance within each window (its statistics only: "
        "no future audio)"
        if feat.causal
        else "normalised to zero mean and unit variance over the whole stimulus"
    ) + (
        " (when the model's preprocessor configuration sets do_normalize, as wav2vec 2.0's "
        "does; otherwise left as is)"
    )
    outer = (
        f"{enc.n_folds} contiguous, unshuffled folds of the concatenated runs"
        if enc.cv == "kfold"
        else "leave-one-run-out folds"
    )
    gap = f", dropping the {enc.gap} training scans next to each test block" if enc.gap else ""
    inner = (
        "efficient leave-one-out cross-validation on the training data"
        if enc.inner == "loo"
        else "5-fold contiguous cross-validation on the training data"
    )
    if enc.alpha_search == "exact":
        inner += (
            " (values whose criterion bounds showed they could not be the first minimum were "
            "not evaluated, which gives the choice of the full grid)"
        )
    significance = (
        " Each fold's correlation was tested against zero (one-sided) with Bartlett's effective "
        "degrees of freedom, which account for the autocorrelation of the prediction and of the "
        "BOLD signal; the smallest p-value over folds was Bonferroni-corrected for the number "
        "of folds, and p-values were corrected over voxels by the Benjamini-Hochberg false "
        "discovery rate [@benjamini1995] (maps thresholded at q < 0.05)."
        if enc.participant_stats
        else ""
    )
    quoted = '", "'.join(task.split(", "))  # several tasks (stories) are fitted jointly
    tasks_text = (
        f'task "{task}"'
        if ", " not in task
        else f'the tasks "{quoted}" fitted jointly, runs concatenated task by task in '
        "alphabetical order"
    )
    joint = ""
    if enc.joint:  # --joint (bids_w2v.encoding.banded)
        if enc.joint_solver == "loo":
            fitted, inner = (
                "with bids-w2v's solver, which searches the weightings of himalaya "
                f"{_version('himalaya')}'s random search [@dupre2022]",
                "efficient leave-one-out cross-validation (the ridge refitted with an "
                "intercept without each scan)",
            )
        else:
            fitted, inner = (
                f"with himalaya {_version('himalaya')} [@dupre2022]",
                "5-fold contiguous cross-validation",
            )
        joint = (
            f"\n\n**Joint model.** The feature spaces {', '.join(enc.joint)} were also combined "
            f"in one banded ridge regression [@nunezelizalde2019] fitted {fitted}: one penalty "
            f"per feature space and voxel, chosen among {enc.joint_n_iter} weightings of the "
            f"spaces (the uniform one and Dirichlet draws, seed {enc.joint_seed}) times the "
            f"same penalty grid by {inner} within each training fold of the same outer folds; "
            "each space was standardised on the training fold. The joint model's score is the "
            "coefficient of determination (r²) on the held-out fold, averaged over folds. "
            "Variance was partitioned by also fitting the model without each space: a space's "
            "unique r² is the joint r² minus that of the model without it, and the shared r² "
            "the joint r² minus the sum of the unique parts."
        )
    text = f"""\
## Methods (generated by bids-w2v {__version__})

Brain scores were computed with bids-w2v {__version__}, which implements the analysis of
[@millet2022] with Nipype {_version("nipype")} [@nipype], PyBIDS {_version("pybids")} [@pybids],
nilearn {_version("nilearn")} [@nilearn] and transformers {_version("transformers")}
[@transformers]. The fMRI data of {n_subjects} participant(s) ({n_runs} run(s) of {
        tasks_text
    }, preprocessed BOLD in {config.space}{
        f" at resolution {config.res}" if config.res else ""
    }) were analysed.

**Features.** Each audio stimulus was mixed to mono, resampled to 16 kHz,
{normalisation}, and passed through
{speech_models}, {windows}{causal}. The activations of
{layers} (convolutional blocks average-pooled to the model's frame rate; transformer blocks'
outputs) were treated as events of one model frame each and
{hrf_clause(design)}. {scan_time_clause(design, slice_time_refs)}

**BOLD.** The BOLD signal {confounds}, restricted to the participant's brain mask, and
z-scored within each run; runs were concatenated. {bold_only_clause(config)}
{trimming_clause(config)}

**Encoding model.** For each layer and voxel, a ridge regression from the layer's features to
the BOLD signal was evaluated on {outer}{gap}. Features were standardised on each training
fold; the penalty of each voxel was chosen among {len(enc.alphas)} values log-spaced from
10^{lo:g} to 10^{hi:g} by {inner}. The brain score of a voxel is the
Pearson correlation between its predicted and held-out BOLD signal, averaged over folds; its
peak layer is the layer of highest brain score.{significance}{joint}

### References
"""
    refs = dict(REFERENCES)
    for model in config.models:  # the paper of each speech model's family
        key = model_reference(model.name)
        if key in MODEL_REFERENCES and f"[@{key}]" in text:
            refs[key] = MODEL_REFERENCES[key]
    if enc.participant_stats:
        refs["benjamini1995"] = REFERENCES_GROUP["benjamini1995"]
    if enc.joint:
        refs.update(REFERENCES_JOINT)
    return text + "".join(f"- [@{key}] {ref}\n" for key, ref in refs.items())


REFERENCES_JOINT = {
    "nunezelizalde2019": "Nunez-Elizalde, A. O., Huth, A. G., & Gallant, J. L. (2019). "
    "Voxelwise encoding models with non-spherical multivariate normal priors. NeuroImage 197, "
    "482-492.",
    "dupre2022": "Dupré la Tour, T., Eickenberg, M., Nunez-Elizalde, A. O., & Gallant, J. L. "
    "(2022). Feature-space selection with banded ridge regression. NeuroImage 264, 119728.",
}

REFERENCES_GROUP = {
    "fmriprep": "Esteban, O., et al. (2019). fMRIPrep: a robust preprocessing pipeline for "
    "functional MRI. Nature Methods 16, 111-116.",
    "scipy": "Virtanen, P., et al. (2020). SciPy 1.0: fundamental algorithms for scientific "
    "computing in Python. Nature Methods 17, 261-272.",
    "benjamini1995": "Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery "
    "rate: a practical and powerful approach to multiple testing. Journal of the Royal "
    "Statistical Society B 57(1), 289-300.",
    "nichols2002": "Nichols, T. E., & Holmes, A. P. (2002). Nonparametric permutation tests "
    "for functional neuroimaging: a primer with examples. Human Brain Mapping 15(1), 1-25.",
}

def group_methods_boilerplate(
    *,
    n_subjects: int,
    models: list[str],
    fdr_q: float,
    atlas: str | None,
    noise_ceiling: bool,
    comparisons: list[str],
    noise_ceiling_method: str = "paper",
    group_test: str = "wilcoxon",
) -> str:
    """Describe the group analysis as a methods paragraph (Markdown), from what was run.

    Parameters
    ----------
    n_subjects : int
        Participants combined.
    models : list of str
        Model labels analysed.
    fdr_q : float
        FDR level of the thresholded maps.
    atlas : str or None
        ROI atlas used, if any.
    noise_ceiling : bool
        Whether a noise ceiling was estimated.
    comparisons : list of str
        Model contrasts (``A - B``).
    noise_ceiling_method : {"paper", "voxelwise"}
        How the ceiling was estimated (:mod:`bids_w2v.group.ceiling`).
    group_test : {"wilcoxon", "permutation"}
        Test of the group maps (:mod:`bids_w2v.group.significance`).

    Returns
    -------
    str
        Markdown text with references.
    """
    rois = (
        f" Scores were summarised in the regions of the atlas {atlas} (mean over each region's "
        "voxels per participant, then mean and standard error across participants)."
        if atlas
        else ""
    )
    ceiling = (
        " A noise ceiling was estimated for each participant by predicting their cleaned BOLD "
        "from the mean cleaned BOLD of the other participants who heard the same stimuli"
        + (
            ", as in the authors' code [@millet2022]: principal component analysis (100 "
            "components) of the participant's data and of the others' mean, a multivariate "
            "ridge regression from the others' components to the participant's (penalty among "
            "0.1, 1 and 10 chosen by leave-one-out error, as scikit-learn's RidgeCV), "
            "predictions cross-validated over 10 contiguous folds and mapped back through the "
            "inverse PCA, and the Pearson correlation per voxel over the whole series"
            if noise_ceiling_method == "paper"
            else ", with a cross-validated least-squares regression of each voxel on the same "
            "voxel of the others' mean, on the encoding model's outer folds (bids-w2v's "
            "voxelwise ceiling, which differs from the authors' PCA-based ceiling "
            "[@millet2022])"
        )
        + "; group brain scores were also expressed as a fraction of the mean ceiling."
        if noise_ceiling
        else ""
    )
    contrast = (
        f" Models were compared ({'; '.join(comparisons)}) with paired two-sided "
        + (
            "Wilcoxon signed-rank tests across participants, per voxel and on whole-brain means."
            if group_test == "wilcoxon"
            else "sign-flip permutation tests of the differences per voxel (FWE-corrected as "
            "above) and Wilcoxon signed-rank tests on whole-brain means."
        )
        if comparisons
        else ""
    )
    if group_test == "wilcoxon":
        test = (
            "each voxel's scores were tested against zero with a two-sided Wilcoxon signed-rank "
            "test across participants; p-values were corrected over voxels by the "
            f"Benjamini-Hochberg false discovery rate [@benjamini1995] and maps thresholded at "
            f"q < {fdr_q:g}."
        )
    else:
        test = (
            "each voxel's scores were tested against zero with a two-sided sign-flip "
            "permutation test of the one-sample t statistic across participants (nilearn's "
            "permuted_ols, intercept-only design), corrected for the family-wise error over "
            "voxels by the maximum statistic [@nichols2002], and maps thresholded at "
            f"FWE-corrected p < {fdr_q:g} (the paper used Wilcoxon signed-rank tests with FDR)."
        )
    text = f"""\
## Group-level methods (generated by bids-w2v {__version__})

The brain-score maps of {n_subjects} participant(s) (model(s): {", ".join(models)}) were
combined with bids-w2v {__version__} [@millet2022] on preprocessed data from fMRIPrep
[@fmriprep], using PyBIDS {_version("pybids")} [@pybids], Nipype {_version("nipype")}
[@nipype], nilearn {_version("nilearn")} [@nilearn] and SciPy {_version("scipy")} [@scipy].
For each layer, the mean brain score across participants was computed, and {test} Each
participant's peak layer
(the layer of highest brain score per voxel) was combined across participants by the circular
mean of [@millet2022], k* = angle(mean_s exp(2 i pi k_s / (K + 1))).{rois}{ceiling}{contrast}

### References
"""
    refs = {**REFERENCES, **REFERENCES_GROUP}
    return text + "".join(f"- [@{key}] {ref}\n" for key, ref in refs.items())
