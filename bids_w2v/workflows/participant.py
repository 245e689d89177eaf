"""Participant-level workflow: clean BOLD, build designs, fit every layer, write maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_w2v.interfaces.bold import BrainMask, BuildDesign, CleanBold
from bids_w2v.interfaces.encoding import FitEncoding
from bids_w2v.interfaces.outputs import WriteParticipantMaps
from bids_w2v.interfaces.reports import ParticipantReport
from bids_w2v.io.bids import RunInputs


def fit_mem_gb(n_scans: int, n_voxels: int, voxel_chunk: int, n_features: int = 768) -> float:
    """Memory estimate (GB) of one layer's fit.

    The concatenated BOLD (float32) and design, plus three float64 work arrays of one voxel
    chunk and the feature Gram matrices.
    """
    floats32 = n_scans * (n_voxels + n_features)
    floats64 = n_scans * min(n_voxels, voxel_chunk) * 3 + n_features**2 * 3
    return max(0.5, (4 * floats32 + 8 * floats64) / 1e9)


def _mask_voxels(mask: Path) -> int:
    """Voxels inside a brain mask (an upper bound of the participant's common mask)."""
    return int(np.count_nonzero(np.asarray(nb.load(str(mask)).dataobj)))


def init_participant_wf(
    subject: str,
    runs: Sequence[RunInputs],
    *,
    stimuli: Sequence[str],
    stimuli_dir: Path,
    output_dir: Path,
    space: str,
    res: str | None,
    confounds_strategy: Sequence[str],
    hrf_model: str,
    oversampling: int,
    slice_time_ref: float,
    n_folds: int,
    cv: str,
    gap: int,
    alphas: Sequence[float],
    inner: str,
    encoding_backend: str,
    device: str,
    voxel_chunk: int,
    omp_nthreads: int,
    metadata: dict[str, Any],
    name: str | None = None,
) -> pe.Workflow:
    """Build the participant-level graph.

    Parameters
    ----------
    subject : str
        Subject label (without ``sub-``).
    runs : sequence of RunInputs
        The participant's runs of one task (from :func:`bids_w2v.io.bids.collect_runs`).
    stimuli : sequence of str
        Every unique stimulus of the analysis, in the order of ``inputnode.feature_files``.
    stimuli_dir : Path
        The dataset's ``stimuli/`` folder (``stim_file`` values are relative to it).
    output_dir : Path
        Root of the derivative dataset.
    space, res : str
        Output space entities.
    confounds_strategy : sequence of str
        nilearn ``load_confounds`` strategy.
    hrf_model, oversampling, slice_time_ref
        HRF convolution settings.
    n_folds, cv, gap, alphas, inner, encoding_backend, device, voxel_chunk
        Encoding settings (:class:`bids_w2v.config.EncodingSettings`).
    omp_nthreads : int
        Threads of the fitting nodes.
    metadata : dict
        Analysis settings recorded in every sidecar.
    name : str, optional
        Workflow name (default ``sub_<label>_wf``).

    Returns
    -------
    Workflow
        Inputs ``inputnode.{feature_files, layers, layer_indices, model_label, model_info}``;
        outputs ``outputnode.out_files`` (maps) and ``outputnode.out_report`` (HTML).

    Workflow Graph
        inputnode -> clean_bold (per run) -> build_design (per run) -> fit (per layer)
        -> write_maps -> report -> outputnode
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

    brain_mask = pe.Node(BrainMask(mask_files=[str(r.mask) for r in runs]), name="brain_mask")
    clean_bold = pe.MapNode(
        CleanBold(confounds_strategy=list(confounds_strategy)),
        iterfield=["bold", "tr"],
        name="clean_bold",
    )
    clean_bold.inputs.bold = [str(r.bold) for r in runs]
    clean_bold.inputs.tr = [r.tr for r in runs]

    build_design = pe.MapNode(
        BuildDesign(
            stimuli=list(stimuli),
            stimuli_dir=str(stimuli_dir),
            hrf_model=hrf_model,
            oversampling=oversampling,
            slice_time_ref=slice_time_ref,
        ),
        iterfield=["events", "n_scans", "tr", "bold_file"],
        name="build_design",
    )
    build_design.inputs.events = [str(r.events) for r in runs]
    build_design.inputs.n_scans = [r.n_scans for r in runs]
    build_design.inputs.tr = [r.tr for r in runs]

    n_scans = sum(r.n_scans for r in runs)
    fit = pe.MapNode(
        FitEncoding(
            n_folds=n_folds,
            cv=cv,
            gap=gap,
            alphas=list(alphas),
            inner=inner,
            backend=encoding_backend,
            device=device,
            voxel_chunk=voxel_chunk,
            num_threads=omp_nthreads,
        ),
        iterfield=["layer"],
        name="fit_layer",
        mem_gb=fit_mem_gb(n_scans, _mask_voxels(runs[0].mask), voxel_chunk),
        n_procs=omp_nthreads,
    )
    write_maps = pe.Node(
        WriteParticipantMaps(
            output_dir=str(output_dir),
            subject=subject,
            task=runs[0].task,
            space=space,
            res=res,
            metadata=metadata,
        ),
        name="write_maps",
        run_without_submitting=True,
    )

    report = pe.Node(
        ParticipantReport(output_dir=str(output_dir), subject=subject),
        name="report",
    )

    wf.connect([
        (inputnode, build_design, [("feature_files", "feature_files"), ("layers", "layers")]),
        (brain_mask, clean_bold, [("out_file", "mask_file")]),
        (clean_bold, build_design, [("out_file", "bold_file")]),
        (build_design, fit, [("out_file", "design_files")]),
        (clean_bold, fit, [("out_file", "bold_files")]),
        (inputnode, fit, [("layers", "layer")]),
        (fit, write_maps, [("out_file", "result_files")]),
        (inputnode, write_maps, [
            ("layers", "layers"),
            ("layer_indices", "layer_indices"),
            ("model_label", "model_label"),
            ("model_info", "model_info"),
        ]),
        (brain_mask, write_maps, [("out_file", "mask_file")]),
        (write_maps, outputnode, [("out_files", "out_files")]),
        (write_maps, report, [("out_files", "map_files")]),
        (report, outputnode, [("out_report", "out_report")]),
    ])  # fmt: skip
    return wf
