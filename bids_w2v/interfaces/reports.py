"""Nipype interface writing the participant's HTML report (content in bids_w2v.reports)."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _ParticipantReportInputSpec(BaseInterfaceInputSpec):
    map_files = traits.List(traits.Str, mandatory=True, desc="maps written for the participant")
    output_dir = traits.Str(mandatory=True, desc="derivative dataset root")
    subject = traits.Str(mandatory=True, desc="subject label")


class _ParticipantReportOutputSpec(TraitedSpec):
    out_report = File(exists=True, desc="OUTPUT_DIR/sub-<label>.html")


class ParticipantReport(SimpleInterface):
    """Write ``sub-<label>.html``: summary, layer profile, glass brains, methods."""

    input_spec = _ParticipantReportInputSpec
    output_spec = _ParticipantReportOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from bids_w2v.reports.participant import write_participant_report

        report = write_participant_report(
            Path(self.inputs.output_dir),
            self.inputs.subject,
            [Path(f) for f in self.inputs.map_files],
        )
        self._results["out_report"] = str(report)
        return runtime
