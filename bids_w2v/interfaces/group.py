"""Nipype interface writing group-level maps (science in bids_w2v.io.group)."""

from __future__ import annotations

from nipype.interfaces.base import BaseInterfaceInputSpec, SimpleInterface, TraitedSpec, traits


class _GroupMapsInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivative dataset root")
    task = traits.Str(mandatory=True)
    space = traits.Str(mandatory=True)
    res = traits.Either(None, traits.Str, default=None, usedefault=True)
    model_label = traits.Str(mandatory=True)
    participants = traits.List(traits.Str, desc="restrict to these subjects")


class _GroupMapsOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="files written")


class GroupMaps(SimpleInterface):
    """Mean brain-score map per layer, peak layer of the mean and circular-mean peak layer."""

    input_spec = _GroupMapsInputSpec
    output_spec = _GroupMapsOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.io.group import collect_participant_maps, write_group_maps

        res = self.inputs.res
        found = collect_participant_maps(
            Path(self.inputs.output_dir),
            self.inputs.task,
            self.inputs.space,
            res,
            tuple(self.inputs.participants) if self.inputs.participants else (),
        )
        files = write_group_maps(
            found[self.inputs.model_label],
            output_dir=Path(self.inputs.output_dir),
            task=self.inputs.task,
            space=self.inputs.space,
            res=res,
            model_label=self.inputs.model_label,
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime
