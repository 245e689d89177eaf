"""Nipype interfaces of the group level (science in :mod:`bids_w2v.group`)."""

from __future__ import annotations

from nipype.interfaces.base import BaseInterfaceInputSpec, SimpleInterface, TraitedSpec, traits


class _GroupCommonInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="derivative dataset root")
    task = traits.Str(mandatory=True, desc="task label of the group outputs")
    space = traits.Str(mandatory=True)
    res = traits.Either(None, traits.Str, default=None, usedefault=True)
    participants = traits.List(traits.Str, desc="restrict to these subjects")
    tasks = traits.List(traits.Str, desc="--task: maps whose tasks are all among these")


class _FilesOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="files written")


def _found(inputs):
    from pathlib import Path

    from bids_w2v.group.collection import collect_participant_maps

    return collect_participant_maps(
        Path(inputs.output_dir),
        tuple(inputs.tasks) if inputs.tasks else None,
        inputs.space,
        inputs.res,
        tuple(inputs.participants) if inputs.participants else (),
    )


class _GroupTestInputSpec(_GroupCommonInputSpec):
    group_test = traits.Enum("wilcoxon", "permutation", mandatory=True)
    n_permutations = traits.Int(mandatory=True)
    permutation_seed = traits.Int(mandatory=True)


def _group_test(inputs):
    from bids_w2v.group.significance import GroupTest

    return GroupTest(inputs.group_test, inputs.n_permutations, inputs.permutation_seed)


class _GroupMapsInputSpec(_GroupTestInputSpec):
    model_label = traits.Str(mandatory=True)
    fdr_q = traits.Float(mandatory=True, desc="FDR level of the thresholded maps")
    roi_atlas = traits.Either(None, traits.Str, mandatory=True, desc="label image, or None")
    ceiling_file = traits.Either(None, traits.Str, default=None, usedefault=True)


class GroupMaps(SimpleInterface):
    """Mean, p, q, thresholded and normalised maps per layer; peak layers; ROI table."""

    input_spec = _GroupMapsInputSpec
    output_spec = _FilesOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.group.maps import write_group_maps

        files = write_group_maps(
            _found(self.inputs)[self.inputs.model_label],
            output_dir=Path(self.inputs.output_dir),
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            model_label=self.inputs.model_label,
            fdr_q=self.inputs.fdr_q,
            roi_atlas=Path(self.inputs.roi_atlas) if self.inputs.roi_atlas else None,
            ceiling_file=Path(self.inputs.ceiling_file) if self.inputs.ceiling_file else None,
            group_test=_group_test(self.inputs),
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime


class _ModelComparisonInputSpec(_GroupTestInputSpec):
    model_a = traits.Str(mandatory=True, desc="minuend model label")
    model_b = traits.Str(mandatory=True, desc="subtrahend model label")
    fdr_q = traits.Float(mandatory=True, desc="FDR level of the thresholded maps")


class ModelComparison(SimpleInterface):
    """Paired Wilcoxon difference maps (model A - model B) per layer and a whole-brain table."""

    input_spec = _ModelComparisonInputSpec
    output_spec = _FilesOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.group.comparison import write_model_comparison

        found = _found(self.inputs)
        files = write_model_comparison(
            found[self.inputs.model_a],
            found[self.inputs.model_b],
            output_dir=Path(self.inputs.output_dir),
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            fdr_q=self.inputs.fdr_q,
            group_test=_group_test(self.inputs),
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime


class _NoiseCeilingInputSpec(_GroupCommonInputSpec):
    bids_dir = traits.Str(mandatory=True)
    fmriprep_dir = traits.Str(mandatory=True)
    # the participant level's settings (bids_w2v.config.settings_dict of each section)
    input_settings = traits.Dict(mandatory=True, desc="InputSettings")
    cleaning_settings = traits.Dict(mandatory=True, desc="CleaningSettings")
    encoding_settings = traits.Dict(mandatory=True, desc="EncodingSettings")
    noise_ceiling_method = traits.Enum("paper", "voxelwise", mandatory=True)


class _NoiseCeilingOutputSpec(_FilesOutputSpec):
    ceiling_file = traits.Either(None, traits.Str, desc="group mean ceiling (None if none)")


class NoiseCeiling(SimpleInterface):
    """Per-participant noise ceiling from the other participants, and its group mean."""

    input_spec = _NoiseCeilingInputSpec
    output_spec = _NoiseCeilingOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.config import (
            CleaningSettings,
            EncodingSettings,
            InputSettings,
            settings_from,
        )
        from bids_w2v.group.noise_ceiling import group_ceiling_path, write_noise_ceiling

        files, _ = write_noise_ceiling(
            _found(self.inputs),
            bids_dir=Path(self.inputs.bids_dir),
            fmriprep_dir=Path(self.inputs.fmriprep_dir),
            output_dir=Path(self.inputs.output_dir),
            scratch_dir=Path(runtime.cwd) / "cleaned_bold",
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            inputs=settings_from(InputSettings, self.inputs.input_settings),
            cleaning=settings_from(CleaningSettings, self.inputs.cleaning_settings),
            encoding=settings_from(EncodingSettings, self.inputs.encoding_settings),
            method=self.inputs.noise_ceiling_method,
        )
        group = group_ceiling_path(
            Path(self.inputs.output_dir), self.inputs.task, self.inputs.space, self.inputs.res
        )
        self._results["out_files"] = [str(f) for f in files]
        self._results["ceiling_file"] = str(group) if group in files else None
        return runtime


class _GroupReportInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True)
    task = traits.Str(mandatory=True)
    space = traits.Str(mandatory=True)
    res = traits.Either(None, traits.Str, default=None, usedefault=True)
    in_files = traits.List(traits.Str, desc="outputs the report waits for")


class _GroupReportOutputSpec(TraitedSpec):
    out_report = traits.Str(desc="OUTPUT_DIR/group.html")


class GroupReport(SimpleInterface):
    """Write ``OUTPUT_DIR/group.html`` from the group outputs on disk."""

    input_spec = _GroupReportInputSpec
    output_spec = _GroupReportOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.reports.group import write_group_report

        report = write_group_report(
            Path(self.inputs.output_dir),
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
        )
        self._results["out_report"] = str(report)
        return runtime


class _GroupJointInputSpec(_GroupTestInputSpec):
    fdr_q = traits.Float(mandatory=True, desc="FDR level of the thresholded maps")


class GroupJointMaps(SimpleInterface):
    """Mean joint-model maps and the group test of each feature space's unique variance."""

    input_spec = _GroupJointInputSpec
    output_spec = _FilesOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.group.joint import write_group_joint_maps

        files = write_group_joint_maps(
            Path(self.inputs.output_dir),
            task=self.inputs.task,
            space=self.inputs.space,
            res=self.inputs.res,
            fdr_q=self.inputs.fdr_q,
            group_test=_group_test(self.inputs),
            participants=tuple(self.inputs.participants),
        )
        self._results["out_files"] = [str(f) for f in files]
        return runtime
