"""Top-level participant graph: one feature extraction for all stimuli, one sub-graph each
participant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_w2v import __version__
from bids_w2v.bold.confounds import ScanTrim, read_trim_table, scan_trims
from bids_w2v.config import ModelSpec, RunConfig
from bids_w2v.encoding.ridge import resolve_alpha_search
from bids_w2v.errors import InputError
from bids_w2v.inputs.layout import RunInputs
from bids_w2v.interfaces.features import ExtractFeatures
from bids_w2v.spaces import space_for
from bids_w2v.workflows.participant import init_participant_wf


def unique_stimuli(subject_runs: Mapping[str, Sequence[RunInputs]]) -> list[str]:
    """Every stimulus heard by any participant, once, in a stable order."""
    return sorted(
        {str(p.stim_file) for runs in subject_runs.values() for r in runs for p in r.presentations}
    )


def model_labels(models: Sequence[ModelSpec]) -> list[str]:
    """The ``desc-`` label of each model; two models may not share one.

    Raises
    ------
    InputError
        If two models would write maps under the same label.
    """
    from bids_w2v.features.models import spec_label

    labels = [spec_label(m.name, m.random_init) for m in models]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            first = models[labels.index(label)]
            raise InputError(
                f"The models '{first.name}' and '{models[i].name}'"
                f"{' (both with --random-init)' if models[i].random_init else ''} would both "
                f"write their maps as desc-{label}<Layer>. Give each model once, or rename one "
                "model folder so that their last path components differ."
            )
    return labels


def analysis_metadata(config: RunConfig, runs: Sequence[RunInputs]) -> dict:
    """Sidecar fields describing the analysis of one participant."""
    enc, feat, design = config.encoding, config.features, config.design
    inner = {
        "loo": "efficient leave-one-out (scikit-learn RidgeCV)",
        "kfold": "5 contiguous inner folds",
    }[enc.inner]
    outer = (
        f"{enc.n_folds} contiguous unshuffled folds over concatenated runs"
        if enc.cv == "kfold"
        else "leave one run out"
    )
    sources = []
    for run in runs:
        sources += [f for f in (*run.data_files, run.mask, run.events, run.confounds) if f]
        sources += [config.inputs.stimulus_map] if config.inputs.stimulus_map else []
        sources += [p.stim_file for p in run.presentations]
    return {
        "CrossValidation": {
            "Outer": outer,
            "NFolds": enc.n_folds if enc.cv == "kfold" else len(runs),
            "GapScans": enc.gap,
            "Inner": inner,
            "AlphaSearch": {
                "local": "descent from the minima of a proxy of the criterion (generalised "
                "cross-validation for leave-one-out) for each voxel (bids_w2v.encoding.search)",
                "full": "every alpha of the grid",
            }[resolve_alpha_search(enc.alpha_search, enc.inner)],
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


def init_bids_w2v_wf(
    subject_runs: Mapping[str, Sequence[RunInputs]],
    config: RunConfig,
    *,
    name: str = "bids_w2v_wf",
) -> pe.Workflow:
    """Build the participant-level graph of every selected participant.

    Parameters
    ----------
    subject_runs : mapping
        Subject label -> its runs (:func:`bids_w2v.inputs.layout.collect_runs`).
    config : RunConfig
        The run's frozen configuration; its fields are passed on as explicit arguments.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        ``extract_features_<label>`` per model (once for every unique stimulus, cached) feeding one
        ``sub_<label>_wf`` per participant.
    """
    stimuli = unique_stimuli(subject_runs)
    wf = pe.Workflow(name=name, base_dir=str(config.work_dir))
    labels = model_labels(config.models)
    feat = config.features
    extract = {
        label: pe.Node(
            ExtractFeatures(
                stimuli=stimuli,
                model=spec.name,
                random_init=spec.random_init,
                seed=spec.seed,
                allow_download=spec.allow_download,
                allow_pickle=spec.allow_pickle,
                layers=feat.layers,
                window_s=feat.window_s,
                stride_s=feat.stride_s,
                causal=feat.causal,
                batch_size=feat.batch_size,
                device=feat.device,
                dtype=feat.dtype,
                cache_dir=str(config.cache_dir),
                num_threads=config.omp_nthreads,
                progress=config.verbosity > 0,
                save_dir=str(config.output_dir) if feat.save_features else "",
                stimuli_dir=str(config.bids_dir / "stimuli"),
            ),
            name=f"extract_features_{label}",
            n_procs=config.omp_nthreads,
            mem_gb=3.0,
        )
        for label, spec in zip(labels, config.models, strict=True)
    }
    trims = (
        read_trim_table(config.cleaning.trim_scans_file)
        if config.cleaning.trim_scans_file
        else ScanTrim(*config.cleaning.trim_scans)
    )
    for subject, runs in subject_runs.items():
        sub_wf = init_participant_wf(
            subject,
            runs,
            stimuli=stimuli,
            output_dir=config.output_dir,
            space=config.space,
            res=config.res,
            confounds_strategy=config.cleaning.confounds_strategy,
            hrf_model=config.design.hrf_model,
            oversampling=config.design.oversampling,
            slice_time_ref=config.design.slice_time_ref,
            fir_delays=config.design.fir_delays,
            dummy_scans=config.cleaning.dummy_scans,
            scan_trims=scan_trims(runs, trims),
            high_pass=config.cleaning.high_pass,
            n_folds=config.encoding.n_folds,
            cv=config.encoding.cv,
            gap=config.encoding.gap,
            alphas=config.encoding.alphas,
            inner=config.encoding.inner,
            alpha_search=config.encoding.alpha_search,
            encoding_backend=config.encoding.backend,
            device=config.encoding.device,
            voxel_chunk=config.encoding.voxel_chunk,
            features_pca=config.encoding.features_pca,
            omp_nthreads=config.omp_nthreads,
            metadata=analysis_metadata(config, runs),
            model_labels=labels,
        )
        for label, node in extract.items():
            inputs = f"model_{label}_wf.inputnode"
            wf.connect([
                (node, sub_wf, [
                    ("feature_files", f"{inputs}.feature_files"),
                    ("layers", f"{inputs}.layers"),
                    ("layer_indices", f"{inputs}.layer_indices"),
                    ("model_label", f"{inputs}.model_label"),
                    ("model_info", f"{inputs}.model_info"),
                ]),
            ])  # fmt: skip
    return wf
