"""--slice-time-ref: each run's design is sampled at (i + ref) * TR, ref read from the sidecar.

Ground truth: nilearn's ``compute_regressor`` at frame times built here with numpy, from the
StartTime written into the dataset's sidecar (not from bids-w2v's scan_times).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
import soundfile as sf
from nilearn.glm.first_level import compute_regressor

from bids_w2v.errors import InputError
from bids_w2v.features.design import build_run_design
from bids_w2v.features.extract import Features
from bids_w2v.features.scan_timing import (
    describe_slice_time_refs,
    resolve_slice_time_ref,
    slice_time_refs,
)
from bids_w2v.inputs.filters import CollectOptions
from bids_w2v.inputs.layout import collect_runs, load_layout

SPACE = "MNI152NLin2009cAsym"
TR, N_SCANS = 2.0, 30


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_dataset(root: Path, sidecars: dict[str, dict]) -> Path:
    """One subject, one run per entry of ``sidecars`` (the preprocessed BOLD's sidecar)."""
    _json(root / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.10.0"})
    fmriprep = root / "derivatives" / "fmriprep"
    _json(fmriprep / "dataset_description.json",
          {"Name": "f", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
           "GeneratedBy": [{"Name": "fMRIPrep"}]})  # fmt: skip
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    sf.write(root / "stimuli" / "a.wav", np.zeros(8000 * 20), 8000)
    _json(root / "task-listen_bold.json", {"RepetitionTime": TR, "TaskName": "listen"})
    img = nb.Nifti1Image(np.ones((2, 2, 2, N_SCANS), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    for run, sidecar in sidecars.items():
        stem = f"sub-01_task-listen_run-{run}"
        func, dfunc = root / "sub-01" / "func", fmriprep / "sub-01" / "func"
        func.mkdir(parents=True, exist_ok=True)
        dfunc.mkdir(parents=True, exist_ok=True)
        img.to_filename(func / f"{stem}_bold.nii.gz")
        (func / f"{stem}_events.tsv").write_text(
            "onset\tduration\ttrial_type\tstim_file\n3.0\t20.0\tspeech\ta.wav\n"
        )
        img.to_filename(dfunc / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz")
        _json(dfunc / f"{stem}_space-{SPACE}_desc-preproc_bold.json", sidecar)
    return root


def _runs(root: Path):
    layout = load_layout(root, root / "derivatives" / "fmriprep", validate=True)
    return collect_runs(layout, "01", "listen", SPACE, None, CollectOptions(need_confounds=False))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = write_dataset(
        tmp_path_factory.mktemp("stc"),
        {
            "1": {"RepetitionTime": TR, "SliceTimingCorrected": True, "StartTime": 0.8},
            "2": {"RepetitionTime": TR, "SliceTimingCorrected": False, "StartTime": 0.8},
            "3": {"RepetitionTime": TR},
        },
    )
    return _runs(root)


def test_auto_reads_start_time_of_slice_time_corrected_runs(runs):
    assert [r.start_time for r in runs] == [0.8, None, None]
    refs = slice_time_refs("auto", runs)
    assert [r.value for r in refs] == [0.4, 0.0, 0.0]
    assert [r.source for r in refs] == ["sidecar", "none recorded", "none recorded"]
    lines = describe_slice_time_refs(refs)
    assert any("0.4 of the TR for 1 run(s) (sub-01_task-listen_run-1)" in line for line in lines)
    fallback = next(line for line in lines if "slice-time reference 0 " in line)
    assert "2 run(s)" in fallback and "no slice-timing correction recorded" in fallback
    assert [r.value for r in slice_time_refs(0.25, runs)] == [0.25] * 3
    assert resolve_slice_time_ref(0.0, runs[0]).source == "option"


@pytest.mark.parametrize("hrf_model", ["glover", "spm + derivative"])
def test_design_equals_nilearn_at_the_recorded_scan_times(runs, hrf_model):
    """build_run_design at the resolved reference = compute_regressor at (i + 0.8 / TR) * TR."""
    rng = np.random.default_rng(3)
    rate = 50.0
    feats = {}
    for p in runs[0].presentations:
        feats[Path(p.stim_file)] = Features(layers={"l": rng.standard_normal((900, 3))},
                                            frame_rate=rate)  # fmt: skip
    ref = resolve_slice_time_ref("auto", runs[0]).value
    ours = build_run_design(
        runs[0].presentations, feats, ["l"], n_scans=N_SCANS, tr=runs[0].tr,
        hrf_model=hrf_model.replace(" ", ""), slice_time_ref=ref,
    )["l"]  # fmt: skip
    frame_times = 0.8 + TR * np.arange(N_SCANS)  # StartTime + i * TR
    (p,) = runs[0].presentations
    values = feats[Path(p.stim_file)].layers["l"]
    onsets = p.onset + np.arange(values.shape[0]) / rate
    n_kernels = 2 if "derivative" in hrf_model else 1
    assert ours.shape == (N_SCANS, 3 * n_kernels)
    for k in range(3):
        expected, _ = compute_regressor(
            (onsets, np.full(onsets.size, 1 / rate), values[:, k]), hrf_model, frame_times,
            oversampling=50,
        )  # fmt: skip
        for kernel in range(n_kernels):
            np.testing.assert_allclose(
                ours[:, kernel * 3 + k], expected[:, kernel], rtol=1e-4, atol=1e-5
            )
    # sampled at the start of the TR instead, the design differs from the data's timing
    at_zero = build_run_design(runs[0].presentations, feats, ["l"], n_scans=N_SCANS, tr=TR,
                               hrf_model=hrf_model.replace(" ", ""))["l"]  # fmt: skip
    assert np.abs(at_zero - ours).max() > 0.05 * np.abs(ours).max()


@pytest.mark.parametrize("start", [2.0, -0.5, "half"])
def test_bad_start_time(tmp_path, start):
    root = write_dataset(
        tmp_path, {"1": {"RepetitionTime": TR, "SliceTimingCorrected": True, "StartTime": start}}
    )
    with pytest.raises(InputError, match=r"StartTime .*not a number of seconds in \[0, 2\)") as e:
        _runs(root)
    assert "desc-preproc_bold.nii.gz" in str(e.value) and "--slice-time-ref" in str(e.value)


def test_bad_start_time_from_the_command_line(tmp_path, tiny_model, capsys):
    from bids_w2v.cli.run import main

    root = write_dataset(
        tmp_path / "ds",
        {"1": {"RepetitionTime": TR, "SliceTimingCorrected": True, "StartTime": 5}},
    )
    code = main([str(root), str(tmp_path / "out"), "participant", "--model", str(tiny_model),
                 "-w", str(tmp_path / "w"), "--confounds-strategy", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "SliceTimingCorrected: true with StartTime 5" in err


@pytest.mark.parametrize("value", ["1.5", "-0.1", "middle"])
def test_bad_slice_time_ref_option(value, capsys):
    from bids_w2v.cli.parser import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["/d", "/o", "participant", "--slice-time-ref", value])
    assert e.value.code == 2 and "--slice-time-ref" in capsys.readouterr().err
