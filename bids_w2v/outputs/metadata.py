"""Sidecar metadata of the participant maps, generated from the run's configuration.

The descriptions of each option's value live here, once: the sidecars and the methods text
(:mod:`bids_w2v.reports.boilerplate`) both read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.config import RunConfig
from bids_w2v.features.scan_timing import AUTO, SliceTimeRef, slice_time_refs
from bids_w2v.inputs.layout import RunInputs
from bids_w2v.inputs.tasks import RUN_ORDER
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


def slice_time_fields(design, refs: Sequence[SliceTimeRef]) -> dict:
    """``HRF`` sidecar fields of the scan times: the reference each run got, and from what."""
    values = sorted({ref.value for ref in refs})
    return {
        "SliceTimeRef": values[0] if len(values) == 1 else [ref.value for ref in refs],
        "SliceTimeRefPerRun": {ref.run: ref.value for ref in refs},
        "SliceTimeRefSetting": design.slice_time_ref,
        "ScanTimes": "(i + SliceTimeRef) * RepetitionTime"
        + (
            "; SliceTimeRef = StartTime / RepetitionTime of each run's slice-time-corrected "
            "BOLD sidecar, 0 where none is recorded"
            if design.slice_time_ref == AUTO
            else ""
        ),
    }


def scan_time_clause(design, refs: Sequence[SliceTimeRef] | None = None) -> str:
    """A sentence saying which time each scan represents, for the methods text.

    Parameters
    ----------
    design : DesignSettings
        ``slice_time_ref`` (``auto`` or a fraction of the TR).
    refs : sequence of SliceTimeRef, optional
        The references resolved for the runs analysed (:mod:`bids_w2v.features.scan_timing`);
        without them the setting is described.
    """
    if design.slice_time_ref != AUTO:
        ref = float(design.slice_time_ref)
        if ref == 0:
            return (
                "Scan i was taken to represent the start of its repetition time, i x TR, as "
                "in [@millet2022] (slice-time reference 0, set by --slice-time-ref)."
            )
        return (
            f"Scan i was taken to represent the time (i + {ref:g}) x TR (slice-time reference "
            f"{ref:g} of the TR, set by --slice-time-ref)."
        )
    rule = (
        "the slice-time reference of each run was read from its preprocessed BOLD sidecar "
        "(StartTime / RepetitionTime when SliceTimingCorrected is true, the time the slices "
        "were corrected to; 0, the start of the repetition time, when no correction is recorded)"
    )
    if not refs:
        return f"Scan i was taken to represent the time (i + r) x TR, where {rule}."
    counts: dict[float, int] = {}
    for ref in refs:
        counts[ref.value] = counts.get(ref.value, 0) + 1
    used = "; ".join(f"r = {value:g} for {n} run(s)" for value, n in sorted(counts.items()))
    return f"Scan i was taken to represent the time (i + r) x TR, where {rule}: {used}."


def bold_only_clause(config: RunConfig) -> str:
    """Where the confounds and the high-pass filter were applied: the BOLD only."""
    cleaning = config.cleaning
    high_pass = (
        f" A Butterworth high-pass filter at {cleaning.high_pass:g} Hz was applied to the BOLD "
        "while cleaning."
        if cleaning.high_pass
        else ""
    )
    if not cleaning.uses_confounds:
        return "No confound was regressed out, of the BOLD or of the features." + high_pass
    return (
        "The confounds were regressed out of the BOLD signal only; the features (the "
        "regressors of the encoding model) were not cleaned of them." + high_pass
    )


def trimming_clause(config: RunConfig) -> str:
    """Which scans were dropped (dummy, trimmed, non-steady-state, removed upstream)."""
    cleaning, dropped = config.cleaning, config.inputs.dropped_scans
    parts = []
    if cleaning.dummy_scans:
        parts.append(f"the first {cleaning.dummy_scans} volume(s) of every run")
    if cleaning.trim_scans_file:
        parts.append(
            f"the volumes listed per task in {cleaning.trim_scans_file.name} (start and end of "
            "each run)"
        )
    elif any(cleaning.trim_scans):
        start, end = cleaning.trim_scans
        parts.append(f"{start} volume(s) at the start and {end} at the end of every run")
    parts.append(
        "the non-steady-state volumes fMRIPrep flagged (non_steady_state_outlier), when the "
        "confounds file lists them"
    )
    text = (
        f"Dropped from the BOLD, the confounds and the design: {'; '.join(parts)}; the design "
        "was convolved on every scan of the run before these rows were removed."
    )
    if dropped:
        text += (
            f" The preprocessing had already removed the first {dropped} volume(s) of every "
            f"run, so the stimulus onsets were moved {dropped} x TR earlier."
        )
    return text


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
            **slice_time_fields(design, slice_time_refs(design.slice_time_ref, runs)),
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
        # every story the participant heard, in one model (bids_w2v.inputs.tasks)
        "Tasks": list(dict.fromkeys(r.task for r in runs)),
        "Runs": [r.label for r in runs],
        "RunOrder": RUN_ORDER,
        "RepetitionTime": runs[0].tr,
        "Sources": sorted({str(Path(s).absolute().as_uri()) for s in sources}),
        "SoftwareVersion": f"bids-w2v {__version__}",
    }
