"""Top-level participant graph: one feature extraction for all stimuli, one sub-graph each
participant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_w2v import __version__
from bids_w2v.config import RunConfig
from bids_w2v.interfaces.features import ExtractFeatures
from bids_w2v.io.bids import RunInputs
from bids_w2v.workflows.participant import init_participant_wf


def unique_stimuli(subject_runs: Mapping[str, Sequence[RunInputs]]) -> list[str]:
    """Every stimulus heard by any participant, once, in a stable order."""
    return sorted(
        {str(p.stim_file) for runs in subject_runs.values() for r in runs for p in r.presentations}
    )


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
        sources += [run.bold, run.mask, run.events]
        sources += [run.confounds] if run.confounds else []
        sources += [p.stim_file for p in run.presentations]
    return {
        "CrossValidation": {
            "Outer": outer,
            "NFolds": enc.n_folds if enc.cv == "kfold" else len(runs),
            "GapScans": enc.gap,
            "Inner": inner,
            "AlphaPerVoxel": True,
            "FeatureStandardization": "within each training fold",
            "Score": "Pearson r on held-out fold, averaged over folds",
        },
        "Alphas": list(enc.alphas),
        "HRF": {
            "Model": design.hrf_model,
            "Oversampling": design.oversampling,
            "SliceTimeRef": design.slice_time_ref,
            "Implementation": "nilearn",
        },
        "Windowing": {
            "WindowSeconds": feat.window_s,
            "StrideSeconds": feat.stride_s,
            "Overlap": "frames averaged",
        },
        "ConfoundsStrategy": list(config.cleaning.confounds_strategy),
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
        Subject label -> its runs (:func:`bids_w2v.io.bids.collect_runs`).
    config : RunConfig
        The run's frozen configuration; its fields are passed on as explicit arguments.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        ``extract_features`` (once for every unique stimulus, cached) feeding one
        ``sub_<label>_wf`` per participant.
    """
    stimuli = unique_stimuli(subject_runs)
    wf = pe.Workflow(name=name, base_dir=str(config.work_dir))
    extract = pe.Node(
        ExtractFeatures(
            stimuli=stimuli,
            model=config.model.name,
            random_init=config.model.random_init,
            seed=config.model.seed,
            allow_download=config.model.allow_download,
            layers=config.features.layers,
            window_s=config.features.window_s,
            stride_s=config.features.stride_s,
            cache_dir=str(config.cache_dir),
            num_threads=config.omp_nthreads,
            progress=config.verbosity > 0,
        ),
        name="extract_features",
        n_procs=config.omp_nthreads,
        mem_gb=3.0,
    )
    for subject, runs in subject_runs.items():
        sub_wf = init_participant_wf(
            subject,
            runs,
            stimuli=stimuli,
            stimuli_dir=config.bids_dir / "stimuli",
            output_dir=config.output_dir,
            space=config.space,
            res=config.res,
            confounds_strategy=config.cleaning.confounds_strategy,
            hrf_model=config.design.hrf_model,
            oversampling=config.design.oversampling,
            slice_time_ref=config.design.slice_time_ref,
            n_folds=config.encoding.n_folds,
            cv=config.encoding.cv,
            gap=config.encoding.gap,
            alphas=config.encoding.alphas,
            inner=config.encoding.inner,
            encoding_backend=config.encoding.backend,
            device=config.encoding.device,
            voxel_chunk=config.encoding.voxel_chunk,
            omp_nthreads=config.omp_nthreads,
            metadata=analysis_metadata(config, runs),
        )
        wf.connect([
            (extract, sub_wf, [
                ("feature_files", "inputnode.feature_files"),
                ("layers", "inputnode.layers"),
                ("layer_indices", "inputnode.layer_indices"),
                ("model_label", "inputnode.model_label"),
                ("model_info", "inputnode.model_info"),
            ]),
        ])  # fmt: skip
    return wf
