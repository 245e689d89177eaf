"""Bad input: one clear paragraph naming the file and the fix, non-zero exit, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from bids_w2v.cli.run import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _common(sim_copy, tiny_model, tmp_path):
    return ["--model", tiny_model, "-w", tmp_path / "work"]


def test_unknown_participant(sim_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys,
        sim_copy,
        tmp_path / "out",
        "participant",
        "--participant-label",
        "sub-99",
        *_common(sim_copy, tiny_model, tmp_path),
    )
    assert code != 0
    assert "sub-99 not found" in err and "sub-01, sub-02" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "sub-99").exists()


def test_space_absent(sim_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys,
        sim_copy,
        tmp_path / "out",
        "participant",
        "--space",
        "T1w",
        *_common(sim_copy, tiny_model, tmp_path),
    )
    assert code != 0
    assert "space 'T1w'" in err and "MNI152NLin2009cAsym" in err and "--space" in err


def test_no_derivatives(sim_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys,
        sim_copy,
        tmp_path / "out",
        "participant",
        "-d",
        f"fmriprep={tmp_path / 'nowhere'}",
        *_common(sim_copy, tiny_model, tmp_path),
    )
    assert code != 0 and "No fMRIPrep derivatives at" in err and "nowhere" in err


def test_stim_file_missing(sim_copy, tiny_model, tmp_path, capsys):
    (sim_copy / "stimuli" / "barber.wav").unlink()
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0
    assert "barber.wav" in err and "does not exist" in err and "events.tsv" in err


def test_events_without_stim_file(sim_copy, tiny_model, tmp_path, capsys):
    events = sim_copy / "sub-01" / "func" / "sub-01_task-listen_run-1_events.tsv"
    events.write_text("onset\tduration\ttrial_type\n2.0\t10\tspeech\n")
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0 and str(events) in err and "stim_file" in err


def test_missing_dataset_description(sim_copy, tiny_model, tmp_path, capsys):
    (sim_copy / "dataset_description.json").unlink()
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0 and "dataset_description.json is missing" in err


def test_unknown_task_and_layer(sim_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys,
        sim_copy,
        tmp_path / "out",
        "participant",
        "--task",
        "rest",
        *_common(sim_copy, tiny_model, tmp_path),
    )
    assert code != 0 and "Task 'rest'" in err and "listen" in err


def test_output_inside_raw_dataset_refused(sim_copy, tiny_model, tmp_path, capsys):
    code, err = _run(
        capsys, sim_copy, sim_copy, "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0 and "never writes into its inputs" in err


def test_group_without_participant_outputs(sim_copy, tmp_path, capsys):
    code, err = _run(capsys, sim_copy, tmp_path / "empty", "group", "-w", tmp_path / "work")
    assert code != 0 and "Run the participant level first" in err


def test_error_in_a_subprocess_has_no_traceback(sim_copy, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bids_w2v",
            str(sim_copy),
            str(tmp_path / "out"),
            "participant",
            "--participant-label",
            "42",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bids-w2v: error: Participant(s) sub-42 not found")


def test_help_and_version():
    proc = subprocess.run(
        [sys.executable, "-m", "bids_w2v", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    for flag in (
        "--participant-label",
        "--random-init",
        "--space",
        "--layers",
        "--omp-nthreads",
        "Millet, Caucheteux",
    ):
        assert flag in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "bids_w2v", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.startswith("bids-w2v ")


def test_unknown_layer_raised_inside_the_graph(sim_copy, tiny_model, tmp_path, capsys, monkeypatch):
    """A bids-w2v error raised inside a Nipype node reaches the user as one paragraph."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, err = _run(
        capsys,
        sim_copy,
        tmp_path / "out",
        "participant",
        "--layers",
        "transformer99",
        *_common(sim_copy, tiny_model, tmp_path),
    )
    assert code != 0
    assert "transformer99" in err and "conv0" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("sub-*/func/*.nii.gz"))
    assert not list(cwd.iterdir()), "crash files must go to the work dir, not the cwd"
    assert list((tmp_path / "work" / "crash").glob("crash-*"))


def test_silent_audio_named(sim_copy, tiny_model, tmp_path, capsys):
    import soundfile as sf

    silent = sim_copy / "stimuli" / "obama_speech.wav"
    sf.write(silent, [[0.0, 0.0]] * 16000, 44100, subtype="PCM_16")
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0
    assert "obama_speech.wav" in err and "silent" in err.lower() and "Traceback" not in err


@pytest.mark.parametrize(
    "where", ["derivatives", "derivatives/fmriprep", "derivatives/fmriprep/out", "stimuli/out"]
)
def test_output_overlapping_inputs_refused(sim_copy, tiny_model, tmp_path, capsys, where):
    before = sorted(p.relative_to(sim_copy) for p in sim_copy.rglob("*"))
    code, err = _run(
        capsys, sim_copy, sim_copy / where, "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0 and "bids-w2v" in err and "OUTPUT_DIR" in err
    assert sorted(p.relative_to(sim_copy) for p in sim_copy.rglob("*")) == before


def test_unwritable_output_folder(sim_copy, tiny_model, tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        # root ignores permissions: make the output path's parent a file instead
        parent = tmp_path / "not_a_folder"
        parent.write_text("")
        out = parent / "out"
    else:
        parent = tmp_path / "readonly"
        parent.mkdir(mode=0o500)
        out = parent / "out"
    code, err = _run(capsys, sim_copy, out, "participant", *_common(sim_copy, tiny_model, tmp_path))
    assert code == 74
    assert "could not write" in err and "writable" in err and "Traceback" not in err


@pytest.mark.slow  # ends with a full participant run
def test_two_resolutions_need_res(sim_copy, tiny_model, tmp_path, capsys):
    func = sim_copy / "derivatives" / "fmriprep" / "sub-01" / "func"
    for f in sorted(func.glob("*space-MNI152NLin2009cAsym_desc-*")):
        target = f.name.replace("space-MNI152NLin2009cAsym_", "space-MNI152NLin2009cAsym_res-2_")
        shutil.copy(f, func / target)
    args = [sim_copy, tmp_path / "out", "participant", "--participant-label", "01"]
    args += _common(sim_copy, tiny_model, tmp_path)
    code, err = _run(capsys, *args)
    assert code != 0 and ":res-N" in err and "res-2" in err
    code, err = _run(capsys, *args, "--space", "MNI152NLin2009cAsym:res-2", "--layers", "conv0")
    assert code == 0, err
    assert list((tmp_path / "out" / "sub-01" / "func").glob("*_res-2_desc-*Conv0_stat-r_*.nii.gz"))


def test_tr_mismatch_between_sidecar_and_header(sim_copy, tiny_model, tmp_path, capsys):
    import json

    sidecar = next(
        (sim_copy / "derivatives" / "fmriprep" / "sub-01" / "func").glob("*run-1*preproc_bold.json")
    )
    meta = json.loads(sidecar.read_text())
    meta["RepetitionTime"] = 2.0
    sidecar.write_text(json.dumps(meta))
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code != 0
    assert sidecar.name.replace(".json", ".nii.gz") in err
    assert "2.0 s in its JSON sidecar but 1 s in the NIfTI header" in err


def test_invalid_dataset_description(sim_copy, tiny_model, tmp_path, capsys):
    (sim_copy / "dataset_description.json").write_text('{"Name": "x", ')
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code == 2 and "dataset_description.json is not valid JSON" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_missing_repetition_time(sim_copy, tiny_model, tmp_path, capsys):
    import json

    import nibabel as nb

    func = sim_copy / "derivatives" / "fmriprep" / "sub-01" / "func"
    bold = sorted(func.glob("*desc-preproc_bold.nii.gz"))[0]
    raw = sim_copy / "sub-01" / "func" / (bold.name.split("_space-")[0] + "_bold.nii.gz")
    for path in (bold, raw):  # neither the derivative nor the raw BOLD gives a TR
        img = nb.load(path)
        img.header.set_zooms(img.header.get_zooms()[:3] + (0.0,))
        nb.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header).to_filename(path)
    sidecars = [
        bold.with_name(bold.name.replace(".nii.gz", ".json")),
        *sim_copy.rglob("*bold.json"),
    ]
    for sidecar in sidecars:
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text())
            meta.pop("RepetitionTime", None)
            sidecar.write_text(json.dumps(meta))
    for top in sim_copy.glob("*bold.json"):
        top.unlink()
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code == 2 and "No repetition time for" in err and bold.name in err
    assert "RepetitionTime" in err and "Traceback" not in err


def test_audio_covering_almost_none_of_the_run(sim_copy, tiny_model, tmp_path, capsys):
    """Onsets written in milliseconds put the audio after the end of the run."""
    import pandas as pd

    events = sorted((sim_copy / "sub-01").rglob("*_events.tsv"))[0]
    table = pd.read_csv(events, sep="\t")
    table["onset"] = table["onset"] * 1000 + 1000
    table.to_csv(events, sep="\t", index=False)
    code, err = _run(
        capsys, sim_copy, tmp_path / "out", "participant", *_common(sim_copy, tiny_model, tmp_path)
    )
    assert code == 2 and "plays during only 0.0 s of the run" in err
    assert "not milliseconds" in err and events.name in err and "Traceback" not in err
