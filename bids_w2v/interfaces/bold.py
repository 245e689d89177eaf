"""Nipype interfaces around BOLD cleaning and design building (science in bids_w2v.io/features)."""

from __future__ import annotations

import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    mask_files = traits.List(File(exists=True), mandatory=True, desc="one mask per run")


class _BrainMaskOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="intersection of the run masks")


class BrainMask(SimpleInterface):
    """Intersect the participant's run masks."""

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        from bids_w2v.io.bold import common_mask

        out = os.path.join(runtime.cwd, "brain_mask.nii.gz")
        common_mask(self.inputs.mask_files).to_filename(out)
        self._results["out_file"] = out
        return runtime


class _CleanBoldInputSpec(BaseInterfaceInputSpec):
    bold = File(exists=True, mandatory=True, desc="fMRIPrep preprocessed BOLD")
    mask_file = File(exists=True, mandatory=True, desc="brain mask")
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    confounds_strategy = traits.List(traits.Str, mandatory=True, desc="nilearn strategy")


class _CleanBoldOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="npz: data (scans x voxels), kept (scan indices)")


class CleanBold(SimpleInterface):
    """Regress confounds and z-score one run (nilearn)."""

    input_spec = _CleanBoldInputSpec
    output_spec = _CleanBoldOutputSpec

    def _run_interface(self, runtime):
        from bids_w2v.io.bold import clean_bold

        data, kept = clean_bold(
            self.inputs.bold,
            self.inputs.mask_file,
            tr=self.inputs.tr,
            confounds_strategy=tuple(self.inputs.confounds_strategy),
        )
        out = os.path.join(runtime.cwd, "bold_clean.npz")
        np.savez(out, data=data, kept=kept)
        self._results["out_file"] = out
        return runtime


class _BuildDesignInputSpec(BaseInterfaceInputSpec):
    events = File(exists=True, mandatory=True, desc="raw BIDS events.tsv")
    stimuli_dir = traits.Str(mandatory=True, desc="the dataset's stimuli/ folder")
    stimuli = traits.List(traits.Str, mandatory=True, desc="unique stimuli (extraction order)")
    feature_files = traits.List(traits.Str, mandatory=True, desc="features, same order")
    layers = traits.List(traits.Str, mandatory=True, desc="layers to build")
    n_scans = traits.Int(mandatory=True, desc="volumes in the run")
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    bold_file = File(exists=True, mandatory=True, desc="cleaned BOLD npz (for kept scans)")
    hrf_model = traits.Str("glover", usedefault=True, desc="nilearn HRF")
    oversampling = traits.Int(50, usedefault=True, desc="HRF oversampling")
    slice_time_ref = traits.Float(0.0, usedefault=True, desc="fraction of the TR")


class _BuildDesignOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="npz, one array (kept scans x features) per layer")


class BuildDesign(SimpleInterface):
    """HRF-convolved features of every layer for one run."""

    input_spec = _BuildDesignInputSpec
    output_spec = _BuildDesignOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.features.cache import load_features
        from bids_w2v.features.design import build_run_design
        from bids_w2v.io.events import read_presentations

        presentations = read_presentations(Path(self.inputs.events), Path(self.inputs.stimuli_dir))
        by_stim = {
            Path(s): Path(f)
            for s, f in zip(self.inputs.stimuli, self.inputs.feature_files, strict=True)
        }
        needed = {Path(p.stim_file) for p in presentations}
        features = {s: load_features(by_stim[s]) for s in needed}
        kept = np.load(self.inputs.bold_file)["kept"]
        design = build_run_design(
            presentations,
            features,
            self.inputs.layers,
            n_scans=self.inputs.n_scans,
            tr=self.inputs.tr,
            kept=kept,
            hrf_model=self.inputs.hrf_model,
            oversampling=self.inputs.oversampling,
            slice_time_ref=self.inputs.slice_time_ref,
        )
        out = os.path.join(runtime.cwd, "design.npz")
        np.savez(out, **design)
        self._results["out_file"] = out
        return runtime
