"""Nipype interface writing participant-level derivatives (science in bids_w2v.outputs.maps)."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _WriteMapsInputSpec(BaseInterfaceInputSpec):
    result_files = traits.List(File(exists=True), mandatory=True, desc="one npz per layer")
    layers = traits.List(traits.Str, mandatory=True, desc="layer names (same order)")
    layer_indices = traits.List(traits.Int, mandatory=True, desc="depth indices")
    mask_file = File(exists=True, mandatory=True, desc="brain mask or surface map space")
    output_dir = traits.Str(mandatory=True, desc="derivative dataset root")
    subject = traits.Str(mandatory=True)
    task = traits.Str(mandatory=True)
    space = traits.Str(mandatory=True)
    res = traits.Either(None, traits.Str, default=None, usedefault=True)
    den = traits.Either(None, traits.Str, default=None, usedefault=True, desc="CIFTI density")
    model_label = traits.Str(mandatory=True)
    model_info = traits.Dict(mandatory=True, desc="model identity")
    metadata = traits.Dict(mandatory=True, desc="analysis settings for the sidecars")


class _WriteMapsOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="files written")


class WriteParticipantMaps(SimpleInterface):
    """Write the brain-score, peak-layer and best-alpha maps of one participant."""

    input_spec = _WriteMapsInputSpec
    output_spec = _WriteMapsOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        import numpy as np

        from bids_w2v.outputs.maps import write_participant_maps
        from bids_w2v.spaces import load_map_space

        results = [dict(np.load(f)) for f in self.inputs.result_files]
        files = write_participant_maps(
            results,
            self.inputs.layers,
            self.inputs.layer_indices,
            load_map_space(self.inputs.mask_file),
            output_dir=Path(self.inputs.output_dir),
            subject=self.inputs.subject,
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            den=self.inputs.den,
            model_label=self.inputs.model_label,
            metadata={**self.inputs.model_info, **self.inputs.metadata},
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime


class _WriteJointMapsInputSpec(BaseInterfaceInputSpec):
    result_file = File(exists=True, mandatory=True, desc="npz of FitJoint")
    mask_file = File(exists=True, mandatory=True, desc="brain mask or surface map space")
    output_dir = traits.Str(mandatory=True, desc="derivative dataset root")
    subject = traits.Str(mandatory=True)
    task = traits.Str(mandatory=True)
    space = traits.Str(mandatory=True)
    res = traits.Either(None, traits.Str, default=None, usedefault=True)
    den = traits.Either(None, traits.Str, default=None, usedefault=True, desc="CIFTI density")
    metadata = traits.Dict(mandatory=True, desc="analysis settings for the sidecars")
    joint_info = traits.Dict(mandatory=True, desc="joint-model settings for the sidecars")


class WriteJointMaps(SimpleInterface):
    """Write the joint model's r2, shared, unique and r2-without maps of one participant."""

    input_spec = _WriteJointMapsInputSpec
    output_spec = _WriteMapsOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        import numpy as np

        from bids_w2v.outputs.joint_maps import write_joint_maps
        from bids_w2v.spaces import load_map_space

        files = write_joint_maps(
            dict(np.load(self.inputs.result_file)),
            load_map_space(self.inputs.mask_file),
            output_dir=Path(self.inputs.output_dir),
            subject=self.inputs.subject,
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            den=self.inputs.den,
            metadata=self.inputs.metadata,
            joint_info=self.inputs.joint_info,
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime
