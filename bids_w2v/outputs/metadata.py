"""Sidecar metadata of the participant maps, generated from the run's configuration.

The descriptions of each option's value live here, once: the sidecars and the methods text
(:mod:`bids_w2v.reports.boilerplate`) both read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.config import RunConfig
from bids_w2v.inputs.layout import RunInputs
from bids_w2v.spaces import space_for

#: ``CrossValidation.Inner`` of the sidecars, per ``--inner-cv``
INNER = {
    "loo": "efficient leave-one-out (scikit-learn RidgeCV)",
    "kfold": "5 contiguous inner folds",
}
#: ``CrossValidation.AlphaSearch`` of the sidecars, per ``--alpha-search`` (resolved)
ALPHA_SEARCH = {
    "exact": "every alpha that bounds on the criterion cannot rule out, which returns the "
    "first minimiser of the full grid (bids_w2v.encoding.prune)",
    "full": "every alpha of the grid",
}


#: name of each HRF of ``--hrf`` (nilearn's models)
HRF_NAMES = {"glover": "Glover", "spm": "SPM"}


def hrf_clause(design) -> str:
    """How features became regressors, for the methods text, from ``--hrf``/``--fir-delays``.

    Parameters
    ----------
    design : DesignSettings
        HRF model, FIR delays and oversampling.

    Returns
    -------
    str
        A clause that completes "... were treated as events of one model frame each and".
    """
    if design.hrf_model == "fir":
        delays = ", ".join(str(d) for d in design.fir_delays)
        return (
            "entered the model as a finite impulse response: copies of every feature delayed "
            f"by {delays} scan(s), sampled at the scan times"
        )
    name, _, derivative = design.hrf_model.partition("+")
    kernel = f"the {HRF_NAMES[name]} HRF"
    if derivative:
        kernel += " and with its time derivative (two regressors per feature)"
    return (
        f"convolved with {kernel} sampled at the scan times (nilearn `compute_regressor` "
        f"semantics, oversampling {design.oversampling})"
    )


def outer_folds(config: RunConfig) -> str:
    """``CrossValidation.Outer`` of the sidecars."""
    enc = config.encoding
    if enc.cv == "kfold":
        return f"{enc.n_folds} contiguous unshuffled folds over concatenated runs"
    return "leave one run out"


def analysis_metadata(config: RunConfig, runs: Sequence[RunInputs]) -> dict:
    """Sidecar fields describing the analysis of one participant.

    Parameters
    ----------
    config : RunConfig
        The run's configuration (every value comes from it).
    runs : sequence of RunInputs
        The participant's runs (sources, scans, repetition time, masks).

    Returns
    -------
    dict
        JSON-serialisable fields of every participant map's sidecar.
    """
    enc, feat, design = config.encoding, config.features, config.design
    sources = []
    for run in runs:
        sources += [f for f in (*run.data_files, run.mask, run.events, run.confounds) if f]
        sources += [config.inputs.stimulus_map] if config.inputs.stimulus_map else []
        sources += [p.stim_file for p in run.presentations]
    return {
        "CrossValidation": {
            "Outer": outer_folds(config),
            "NFolds": enc.n_folds if enc.cv == "kfold" else len(runs),
            "GapScans": enc.gap,
            "Inner": INNER[enc.inner],
            "AlphaSearch": ALPHA_SEARCH[enc.alpha_search],
            "AlphaPerVoxel": True,
            "FeatureStandardization": "within each training fold",
            **(
                {
                    "FeaturePCA": f"first {enc.features_pca} principal components, fitted "
                    "within each training fold"
                }
                if enc.features_pca
                else {}
            ),
            "Score": "Pearson r on held-out fold, averaged over folds",
        },
        "Alphas": list(enc.alphas),
        "HRF": {
            "Model": design.hrf_model,
            "Oversampling": design.oversampling,
            "SliceTimeRef": design.slice_time_ref,
            **({"FirDelaysScans": list(design.fir_delays)} if design.fir_delays else {}),
            "Implementation": "nilearn",
        },
        "Windowing": {
            "WindowSeconds": feat.window_s,
            "StrideSeconds": feat.stride_s,
            "Overlap": "none (causal)" if feat.causal else "frames averaged",
            "Causal": feat.causal,
            "Dtype": feat.dtype,
        },
        "ConfoundsStrategy": list(config.cleaning.confounds_strategy),
        "ScanSelection": {
            "DummyScans": config.cleaning.dummy_scans,
            "TrimScans": (
                str(config.cleaning.trim_scans_file)
                if config.cleaning.trim_scans_file
                else list(config.cleaning.trim_scans)
            ),
            "NonSteadyStateDropped": "fMRIPrep non_steady_state_outlier volumes, when a "
            "confounds file lists them",
            "PreprocessingDroppedScans": config.inputs.dropped_scans,
        },
        "HighPassHz": config.cleaning.high_pass,
        "BrainMask": space_for(config.space).mask_method(runs),
        "BoldStandardization": "z-score per run after confound regression",
        "NumberOfScans": int(sum(r.n_scans for r in runs)),
        "RepetitionTime": runs[0].tr,
        "Sources": sorted({str(Path(s).absolute().as_uri()) for s in sources}),
        "SoftwareVersion": f"bids-w2v {__version__}",
    }
