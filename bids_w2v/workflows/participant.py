"""Participant-level workflow: clean BOLD, build designs, fit every layer, write maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_w2v.config import CleaningSettings, DesignSettings, EncodingSettings, node_inputs
from bids_w2v.features.scan_timing import slice_time_refs
from bids_w2v.inputs.layout import RunInputs
from bids_w2v.interfaces.bold import BrainMask, BuildDesign, CleanBold
from bids_w2v.interfaces.encoding import FitEncoding, FitJoint
from bids_w2v.interfaces.outputs import WriteJointMaps, WriteParticipantMaps
from bids_w2v.interfaces.reports import ParticipantReport
from bids_w2v.outputs.names import task_label
from bids_w2v.spaces import space_for, space_of_file


def fit_mem_gb(n_scans: int, n_voxels: int, voxel_chunk: int, n_features: int = 768) -> float:
    """Memory estimate (GB) of one layer's fit.

    The concatenated BOLD (float32) and design, plus three float64 work arrays of one voxel
    chunk and the feature Gram matrices.
    """
    floats32 = n_scans * (n_voxels + n_features)
    floats64 = n_scans * min(n_voxels, voxel_chunk) * 3 + n_features**2 * 3
    return max(0.5, (4 * floats32 + 8 * floats64) / 1e9)


def clean_mem_gb(n_scans: int, n_voxels: int) -> float:
    """Memory estimate (GB) of cleaning one run: its BOLD and about three float64 copies."""
    return max(0.5, 4 * 8 * n_scans * n_voxels / 1e9)


def _mask_voxels(run: RunInputs) -> int:
    """Voxels in a run's brain mask, or its surface vertices (an upper bound of the
    participant's common map space)."""
    return space_of_file(run.bold).count_features(run.data_files, run.mask)


def _copy(node: pe.Node) -> pe.Node:
    """A copy of a node under the same name (for the same node in another sub-workflow)."""
    copy = node.clone(f"{node.name}_copy")
    copy.name = node.name
    return copy


def init_participant_wf(
    subject: str,
    runs: Sequence[RunInputs],
    *,
    stimuli: Sequence[str],
    output_dir: Path,
    space: str,
    res: str | None,
    cleaning: CleaningSettings,
    design: DesignSettings,
    encoding: EncodingSettings,
    omp_nthreads: int,
    metadata: dict[str, Any],
    scan_trims: Sequence[tuple[int, int]] | None = None,
    model_labels: Sequence[str] = ("model",),
    name: str | None = None,
) -> pe.Workflow:
    """Build the participant-level graph.

    Parameters
    ----------
    subject : str
        Subject label (without ``sub-``).
    runs : sequence of RunInputs
        The participant's runs, of one task or of several fitted jointly, in the order they
        are concatenated (:func:`bids_w2v.inputs.layout.collect_participants`).
    stimuli : sequence of str
        Every unique stimulus of the analysis, in the order of ``inputnode.feature_files``.
    output_dir : Path
        Root of the derivative dataset.
    space, res : str
        Output space entities.
    cleaning : CleaningSettings
        Confounds strategy, dummy scans and high-pass of ``clean_bold``.
    design : DesignSettings
        HRF settings of ``build_design``.
    encoding : EncodingSettings
        Cross-validation and ridge settings of ``fit_layer``.
    omp_nthreads : int
        Threads of the fitting nodes.
    metadata : dict
        Analysis settings recorded in every sidecar
        (:func:`bids_w2v.outputs.metadata.analysis_metadata`).
    scan_trims : sequence of (int, int), optional
        Per run, volumes dropped at the start and end (``--trim-scans``).
    model_labels : sequence of str
        One per speech model (unique): each gets its own ``model_<label>_wf`` with its
        inputnode, designs, fits and maps, sharing the cleaned BOLD.
    name : str, optional
        Workflow name (default ``sub_<label>_wf``).

    Returns
    -------
    Workflow
        Inputs ``model_<label>_wf.inputnode.{feature_files, layers, layer_indices,
        model_label, model_info}`` per model; outputs ``outputnode.out_files`` (maps of every
        model) and ``outputnode.out_report`` (HTML).

    Workflow Graph
        clean_bold (per run) -> per model: inputnode -> build_design (per run) -> fit (per
        layer) -> write_maps; with ``encoding.joint`` (--joint) the designs of its spaces ->
        fit_joint -> write_joint_maps; the maps of all models -> report -> outputnode
    """
    wf = pe.Workflow(name=name or f"sub_{subject}_wf")
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=["feature_files", "layers", "layer_indices", "model_label", "model_info"]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["out_files", "out_report"]), name="outputnode"
    )

    map_space = space_for(space)  # run masks (volumes), or the runs' BOLD: see mask_inputs
    brain_mask = pe.Node(BrainMask(space_kind=map_space.kind), name="brain_mask")
    for name, value in map_space.mask_inputs(runs).items():
        setattr(brain_mask.inputs, name, value)
    clean_bold = pe.MapNode(
        CleanBold(**node_inputs(CleanBold, cleaning)),
        iterfield=["bold", "tr", "trim_start", "trim_end"],
        name="clean_bold",
        mem_gb=clean_mem_gb(max(r.n_scans for r in runs), _mask_voxels(runs[0])),
    )
    trims = list(scan_trims) if scan_trims else [(0, 0)] * len(runs)
    clean_bold.inputs.trim_start = [int(start) for start, _ in trims]
    clean_bold.inputs.trim_end = [int(end) for _, end in trims]
    clean_bold.inputs.bold = [[str(f) for f in r.data_files] for r in runs]
    clean_bold.inputs.tr = [r.tr for r in runs]

    refs = [ref.value for ref in slice_time_refs(design.slice_time_ref, runs)]  # "auto" per run
    build_design = pe.MapNode(
        BuildDesign(
            **node_inputs(BuildDesign, design, stimuli=list(stimuli), slice_time_ref=refs[0])
        ),
        iterfield=["onsets", "stim_files", "n_scans", "tr", "bold_file", "slice_time_ref"],
        name="build_design",
    )
    build_design.inputs.slice_time_ref = refs
    build_design.inputs.onsets = [[p.onset for p in r.presentations] for r in runs]
    build_design.inputs.stim_files = [[str(p.stim_file) for p in r.presentations] for r in runs]
    build_design.inputs.n_scans = [r.n_scans for r in runs]
    build_design.inputs.tr = [r.tr for r in runs]

    n_scans = sum(r.n_scans for r in runs)
    fit = pe.MapNode(
        FitEncoding(**node_inputs(FitEncoding, encoding, num_threads=omp_nthreads)),
        iterfield=["layer"],
        name="fit_layer",
        mem_gb=fit_mem_gb(n_scans, _mask_voxels(runs[0]), encoding.voxel_chunk),
        n_procs=omp_nthreads,
    )
    write_maps = pe.Node(
        WriteParticipantMaps(
            output_dir=str(output_dir),
            subject=subject,
            task=task_label([r.task for r in runs]),  # the tasks fitted jointly
            space=space,
            res=res,
            den=runs[0].den,
            metadata=metadata,
        ),
        name="write_maps",
        run_without_submitting=True,
    )

    report = pe.Node(
        ParticipantReport(output_dir=str(output_dir), subject=subject),
        name="report",
    )

    n_maps = len(model_labels) + bool(encoding.joint)
    all_maps = pe.Node(niu.Merge(n_maps, ravel_inputs=True), name="all_maps")
    model_wfs = {}
    wf.connect([
        (brain_mask, clean_bold, [("out_file", "mask_file")]),
        (all_maps, outputnode, [("out", "out_files")]),
        (all_maps, report, [("out", "map_files")]),
        (report, outputnode, [("out_report", "out_report")]),
    ])  # fmt: skip
    for i, label in enumerate(model_labels, start=1):  # the nodes above, once per model
        model_wf = model_wfs[label] = pe.Workflow(name=f"model_{label}_wf")
        m_input, m_design, m_fit, m_write = (
            _copy(node) for node in (inputnode, build_design, fit, write_maps)
        )
        model_wf.connect([
            (m_input, m_design, [("feature_files", "feature_files"), ("layers", "layers")]),
            (m_design, m_fit, [("out_file", "design_files")]),
            (m_input, m_fit, [("layers", "layer")]),
            (m_fit, m_write, [("out_file", "result_files")]),
            (m_input, m_write, [
                ("layers", "layers"),
                ("layer_indices", "layer_indices"),
                ("model_label", "model_label"),
                ("model_info", "model_info"),
            ]),
        ])  # fmt: skip
        wf.connect([
            (clean_bold, model_wf, [
                ("out_file", "build_design.bold_file"),
                ("out_file", "fit_layer.bold_files"),
            ]),
            (brain_mask, model_wf, [("out_file", "write_maps.mask_file")]),
            (model_wf, all_maps, [("write_maps.out_files", f"in{i}")]),
        ])  # fmt: skip
    if encoding.joint:
        _add_joint(wf, model_wfs, encoding, omp_nthreads, fit.mem_gb, write_maps, n_maps)
    return wf


def _add_joint(wf, model_wfs, encoding, omp_nthreads, mem_gb, write_maps, slot) -> None:
    """``--joint``: one banded ridge of the spaces' designs, and its maps (into ``all_maps``).

    The designs are those of the models' own fits (``model_<label>_wf.build_design``), the
    BOLD and mask those of every model; the maps go to the report with the others.
    """
    from bids_w2v.encoding.joint import from_config
    from bids_w2v.outputs.joint_maps import joint_metadata

    spaces = from_config(encoding.joint)
    missing = sorted({s.label for s in spaces} - set(model_wfs))
    if missing:
        raise ValueError(f"--joint names models without a sub-workflow: {', '.join(missing)}")
    designs = pe.Node(niu.Merge(len(spaces), no_flatten=True), name="joint_designs")
    fit_joint = pe.Node(
        FitJoint(
            **node_inputs(FitJoint, encoding, num_threads=omp_nthreads),
            spaces=list(encoding.joint),
        ),
        name="fit_joint",
        mem_gb=mem_gb * (len(spaces) + 1),
        n_procs=omp_nthreads,
    )
    inputs = write_maps.inputs
    write_joint = pe.Node(
        WriteJointMaps(
            output_dir=inputs.output_dir,
            subject=inputs.subject,
            task=inputs.task,
            space=inputs.space,
            res=inputs.res,
            den=inputs.den,
            metadata=inputs.metadata,
            joint_info=joint_metadata(encoding),
        ),
        name="write_joint_maps",
        run_without_submitting=True,
    )
    for i, space in enumerate(spaces, start=1):
        wf.connect(model_wfs[space.label], "build_design.out_file", designs, f"in{i}")
    wf.connect([
        (designs, fit_joint, [("out", "design_files")]),
        (wf.get_node("clean_bold"), fit_joint, [("out_file", "bold_files")]),
        (fit_joint, write_joint, [("out_file", "result_file")]),
        (wf.get_node("brain_mask"), write_joint, [("out_file", "mask_file")]),
        (write_joint, wf.get_node("all_maps"), [("out_files", f"in{slot}")]),
    ])  # fmt: skip
