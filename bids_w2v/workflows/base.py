"""Top-level participant graph: one feature extraction for all stimuli, one sub-graph each
participant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nipype.pipeline import engine as pe

from bids_w2v.bold.confounds import ScanTrim, read_trim_table, scan_trims
from bids_w2v.config import ModelSpec, RunConfig, node_inputs
from bids_w2v.errors import InputError
from bids_w2v.inputs.layout import RunInputs
from bids_w2v.interfaces.features import ExtractFeatures
from bids_w2v.outputs.metadata import analysis_metadata
from bids_w2v.resources import node_threads
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
    # nothing else can run before the features exist (but cleaning the BOLD): the extraction
    # nodes share all the run's CPUs, and declare the threads they use (MultiProc's accounting)
    threads = node_threads(config.nprocs, config.omp_nthreads, side_by_side=len(labels))
    extract = {
        label: pe.Node(
            ExtractFeatures(
                **node_inputs(
                    ExtractFeatures,
                    spec,
                    feat,
                    model=spec.name,
                    stimuli=stimuli,
                    cache_dir=str(config.cache_dir),
                    num_threads=threads,
                    save_dir=str(config.output_dir) if feat.save_features else "",
                    stimuli_dir=str(config.bids_dir / "stimuli"),
                )
            ),
            name=f"extract_features_{label}",
            n_procs=threads,
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
            cleaning=config.cleaning,
            design=config.design,
            encoding=config.encoding,
            scan_trims=scan_trims(runs, trims),
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
