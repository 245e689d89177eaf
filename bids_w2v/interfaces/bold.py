"""Nipype interfaces around BOLD cleaning and design building (science in bids_w2v.bold,
bids_w2v.spaces and bids_w2v.features)."""

from __future__ import annotations

import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    mask_files = traits.List(File(exists=True), desc="one mask per run (volumes)")
    bold_files = traits.List(
        traits.List(File(exists=True)), desc="per run, the GIfTI pair or CIFTI (surfaces)"
    )
    space_kind = traits.Enum("volume", "surface", "cifti", usedefault=True, desc="input form")


class _BrainMaskOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="NIfTI mask, or surface map space (.npz / .dscalar.nii)")


class BrainMask(SimpleInterface):
    """The participant's map space: run masks intersected or nilearn's EPI mask (volumes), or
    the vertices varying in every run (surfaces) (:mod:`bids_w2v.spaces`)."""

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        from nipype.interfaces.base import isdefined

        from bids_w2v.inputs.preflight import reading
        from bids_w2v.spaces import space_for

        cls = space_for(self.inputs.space_kind)
        bolds = self.inputs.bold_files if isdefined(self.inputs.bold_files) else []
        masks = self.inputs.mask_files if isdefined(self.inputs.mask_files) else []
        with reading([*masks, *(f for run in bolds for f in run)]):
            space = cls.common(bold_files=bolds, mask_files=masks)
        out = space.save(os.path.join(runtime.cwd, f"brain_mask{cls.work_extension}"))
        self._results["out_file"] = str(out)
        return runtime


class _CleanBoldInputSpec(BaseInterfaceInputSpec):
    bold = InputMultiObject(
        File(exists=True), mandatory=True, desc="fMRIPrep BOLD (NIfTI, CIFTI, or GIfTI L and R)"
    )
    mask_file = File(exists=True, mandatory=True, desc="brain mask")
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    confounds_strategy = traits.List(traits.Str, mandatory=True, desc="nilearn strategy")
    # settings of bids_w2v.config.CleaningSettings: no defaults here
    dummy_scans = traits.Int(mandatory=True, desc="first volumes dropped")
    trim_start = traits.Int(mandatory=True, desc="volumes dropped at the start")
    trim_end = traits.Int(mandatory=True, desc="volumes dropped at the end")
    high_pass = traits.Either(None, traits.Float, mandatory=True, desc="high-pass cutoff (Hz)")


class _CleanBoldOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="npz: data (scans x voxels), kept (scan indices)")


class CleanBold(SimpleInterface):
    """Regress confounds and z-score one run (nilearn)."""

    input_spec = _CleanBoldInputSpec
    output_spec = _CleanBoldOutputSpec

    def _run_interface(self, runtime):
        from threadpoolctl import threadpool_limits

        from bids_w2v.bold.cleaning import clean_bold

        with threadpool_limits(limits=1):  # the one thread the node declares (n_procs)
            data, kept = clean_bold(
                self.inputs.bold,
                self.inputs.mask_file,
                tr=self.inputs.tr,
                confounds_strategy=tuple(self.inputs.confounds_strategy),
                dummy_scans=self.inputs.dummy_scans,
                trim=(self.inputs.trim_start, self.inputs.trim_end),
                high_pass=self.inputs.high_pass,
            )
        out = os.path.join(runtime.cwd, "bold_clean.npz")
        np.savez(out, data=data, kept=kept)
        self._results["out_file"] = out
        return runtime


class _BuildDesignInputSpec(BaseInterfaceInputSpec):
    onsets = traits.List(traits.Float, mandatory=True, desc="presentation onsets (s)")
    stim_files = traits.List(traits.Str, mandatory=True, desc="presented stimulus, same order")
    stimuli = traits.List(traits.Str, mandatory=True, desc="unique stimuli (extraction order)")
    feature_files = traits.List(traits.Str, mandatory=True, desc="features, same order")
    layers = traits.List(traits.Str, mandatory=True, desc="layers to build")
    n_scans = traits.Int(mandatory=True, desc="volumes in the run")
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    bold_file = File(exists=True, mandatory=True, desc="cleaned BOLD npz (for kept scans)")
    # settings of bids_w2v.config.DesignSettings: no defaults here
    hrf_model = traits.Str(mandatory=True, desc="nilearn HRF")
    oversampling = traits.Int(mandatory=True, desc="HRF oversampling")
    slice_time_ref = traits.Float(mandatory=True, desc="fraction of the TR")
    fir_delays = traits.List(
        traits.Int, mandatory=True, desc="FIR delays (scans), hrf_model 'fir' only"
    )


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
        from bids_w2v.inputs.events import Presentation

        presentations = [
            Presentation(onset=onset, stim_file=Path(stim))
            for onset, stim in zip(self.inputs.onsets, self.inputs.stim_files, strict=True)
        ]
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
            fir_delays=self.inputs.fir_delays,
        )
        out = os.path.join(runtime.cwd, "design.npz")
        np.savez(out, **design)
        self._results["out_file"] = out
        return runtime
