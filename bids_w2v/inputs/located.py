"""A run's files as pybids found them, before any is read: what the pre-flight checks.

:func:`~bids_w2v.inputs.runs.locate_runs` finds them; :meth:`LocatedRun.input_files` lists every
file the run will read (BOLD, mask, confounds, events and the stimuli they name) for
:func:`~bids_w2v.inputs.preflight.check_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bids.layout import BIDSFile

from bids_w2v.inputs.events import named_stimuli, stim_file_column
from bids_w2v.inputs.filters import CollectOptions
from bids_w2v.inputs.preflight import file_problem
from bids_w2v.inputs.stimulus_map import matching_rows


@dataclass(frozen=True)
class LocatedRun:
    """One run's files as pybids found them, not read yet (:func:`locate_runs`)."""

    bold_file: BIDSFile
    files: tuple[Path, ...]  # the BOLD file(s): NIfTI, CIFTI, or the two GIfTIs
    mask: Path | None
    confounds: Path | None
    events: Path | None

    def input_files(self, stimuli_dir: Path, options: CollectOptions) -> list[Path]:
        """Every file the run will read: BOLD, mask, confounds (and sidecar), events, and the
        stimuli they name."""
        files = [*self.files, self.mask, self.events, self.confounds]
        for bold in self.files:  # the sidecars giving RepetitionTime (pybids reads them)
            sidecar = bold.with_name(bold.name.split(".", 1)[0] + ".json")
            files += [sidecar] if sidecar.is_symlink() or sidecar.exists() else []
        if self.confounds is not None:
            sidecar = self.confounds.with_suffix(".json")  # nilearn reads it
            files += [sidecar] if sidecar.is_symlink() or sidecar.exists() else []
        if options.stimulus_map is not None:
            rows = matching_rows(options.stimulus_map, self.bold_file.get_entities())
            files += named_stimuli(rows["stim_file"], stimuli_dir)
        elif self.events is not None and file_problem(self.events) is None:
            files += named_stimuli(stim_file_column(self.events), stimuli_dir)
        return [f for f in files if f is not None]
