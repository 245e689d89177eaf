"""The TR of a derivative that carries none (GIfTI without TimeStep, no sidecar: AFNI's surfaces)
comes from the raw BOLD with the same entities: its sidecar (BIDS inheritance), then its header.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
import soundfile as sf

from bids_w2v.errors import InputError
from bids_w2v.inputs.filters import CollectOptions
from bids_w2v.inputs.layout import collect_runs, load_layout
from bids_w2v.inputs.timing import tr_notes

SPACE = "fsaverage5"
N_SCANS = 12


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _raw_nifti(path: Path, tr: float | None) -> None:
    img = nb.Nifti1Image(np.ones((2, 2, 2, N_SCANS), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = tr or 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    img.to_filename(path)


def write_surface_dataset(
    root: Path, *, raw_sidecar_tr: float | None, raw_header_tr: float | None, top_level: bool
) -> Path:
    """GIfTI derivatives with no TimeStep and no sidecar (as AFNI writes them); the raw BOLD's
    TR in a top-level sidecar (inherited), in the run's own sidecar, or only in its header."""
    _json(root / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.10.0"})
    deriv = root / "derivatives" / "afni"
    _json(deriv / "dataset_description.json",
          {"Name": "a", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
           "GeneratedBy": [{"Name": "AFNI"}]})  # fmt: skip
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    sf.write(root / "stimuli" / "a.wav", np.zeros(8000 * 10), 8000)
    stem = "sub-01_task-listen_run-1"
    func = root / "sub-01" / "func"
    _raw_nifti(func / f"{stem}_bold.nii.gz", raw_header_tr)
    (func / f"{stem}_events.tsv").write_text(
        "onset\tduration\ttrial_type\tstim_file\n2.0\t10.0\tspeech\ta.wav\n"
    )
    meta = {"TaskName": "listen"} | ({"RepetitionTime": raw_sidecar_tr} if raw_sidecar_tr else {})
    _json(root / "task-listen_bold.json" if top_level else func / f"{stem}_bold.json", meta)
    dfunc = deriv / "sub-01" / "func"
    dfunc.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for hemi in ("L", "R"):
        darrays = [
            nb.gifti.GiftiDataArray(rng.standard_normal(8).astype(np.float32))
            for _ in range(N_SCANS)
        ]
        nb.save(
            nb.GiftiImage(darrays=darrays),
            dfunc / f"{stem}_hemi-{hemi}_space-{SPACE}_bold.func.gii",
        )
    return root


def _collect(root: Path):
    layout = load_layout(root, root / "derivatives" / "afni", validate=True)
    return collect_runs(layout, "01", "listen", SPACE, None, CollectOptions(need_confounds=False))


@pytest.mark.parametrize(
    ("sidecar", "header", "top_level", "source"),
    [
        (2.5, 2.5, True, "the JSON sidecar of the raw BOLD"),  # inherited from task-listen_bold
        (2.5, None, False, "the JSON sidecar of the raw BOLD"),  # header without a TR
        (None, 2.5, True, "the NIfTI header of the raw BOLD"),
    ],
)
def test_tr_from_the_raw_bold(tmp_path, sidecar, header, top_level, source):
    root = write_surface_dataset(
        tmp_path, raw_sidecar_tr=sidecar, raw_header_tr=header, top_level=top_level
    )
    (run,) = _collect(root)
    assert run.tr == 2.5 and run.tr_source.startswith(source)
    assert "sub-01_task-listen_run-1_bold.nii.gz" in run.tr_source
    (note,) = tr_notes([run])
    assert note.startswith("sub-01_task-listen_run-1: repetition time 2.5 s taken from ")
    assert "hemi-L_space-fsaverage5_bold.func.gii carries none" in note


def test_no_tr_anywhere(tmp_path):
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=None, raw_header_tr=None, top_level=True)
    with pytest.raises(InputError, match="No repetition time for") as e:
        _collect(root)
    message = str(e.value)
    assert "hemi-L_space-fsaverage5_bold.func.gii" in message and "raw BOLD" in message
    assert "RepetitionTime" in message


def test_no_raw_bold(tmp_path):
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=2.5, raw_header_tr=2.5, top_level=True)
    (root / "sub-01" / "func" / "sub-01_task-listen_run-1_bold.nii.gz").unlink()
    with pytest.raises(InputError, match="No repetition time for"):
        _collect(root)


def test_raw_sidecar_and_header_disagree(tmp_path):
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=2.0, raw_header_tr=1.5, top_level=True)
    with pytest.raises(InputError, match="2.0 s in its JSON sidecar but 1.5 s in its NIfTI"):
        _collect(root)


def test_raw_sidecar_not_a_number(tmp_path):
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=None, raw_header_tr=2.5, top_level=True)
    _json(root / "task-listen_bold.json", {"TaskName": "listen", "RepetitionTime": "2.5s"})
    with pytest.raises(InputError, match="not a positive number of seconds"):
        _collect(root)


def test_derivative_tr_wins(tmp_path):
    """A derivative with its own TR (a sidecar) does not look at the raw data."""
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=2.0, raw_header_tr=1.5, top_level=True)
    dfunc = root / "derivatives" / "afni" / "sub-01" / "func"
    for hemi in ("L", "R"):
        _json(dfunc / f"sub-01_task-listen_run-1_hemi-{hemi}_space-{SPACE}_bold.json",
              {"RepetitionTime": 2.5})  # fmt: skip
    (run,) = _collect(root)
    assert run.tr == 2.5 and run.tr_source == "" and not tr_notes([run])


def test_no_tr_from_the_command_line(tmp_path, tiny_model, capsys):
    """Neither the derivative nor the raw BOLD gives a TR: one paragraph, exit 2."""
    from bids_w2v.cli.run import main

    root = write_surface_dataset(
        tmp_path / "ds", raw_sidecar_tr=None, raw_header_tr=None, top_level=True
    )
    args = [str(root), str(tmp_path / "out"), "participant", "--model", str(tiny_model),
            "-w", str(tmp_path / "w"), "-d", f"afni={root / 'derivatives' / 'afni'}",
            "--space", SPACE, "--confounds-strategy", "none"]  # fmt: skip
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "No repetition time for" in err


def test_multi_echo_raw_bold(tmp_path):
    """The optimally combined derivative has no echo-: the raw echoes must agree on the TR."""
    root = write_surface_dataset(tmp_path, raw_sidecar_tr=None, raw_header_tr=2.5, top_level=True)
    func = root / "sub-01" / "func"
    raw = func / "sub-01_task-listen_run-1_bold.nii.gz"
    for echo in ("1", "2"):
        _raw_nifti(func / f"sub-01_task-listen_run-1_echo-{echo}_bold.nii.gz", 2.5)
    raw.unlink()
    (run,) = _collect(root)
    assert run.tr == 2.5 and "echo-1_bold.nii.gz" in run.tr_source
    _raw_nifti(func / "sub-01_task-listen_run-1_echo-2_bold.nii.gz", 2.0)
    with pytest.raises(InputError, match=r"disagree \(.*echo-1_bold.nii.gz: 2.5 s, .*: 2 s\)"):
        _collect(root)
