"""Structure of real datasets: sessions, several tasks and runs, several stimuli per run,
non-zero onsets, audio shorter or longer than the run, BIDS filters, stimulus maps."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
import soundfile as sf

from bids_w2v.cli.run import main
from bids_w2v.errors import InputError
from bids_w2v.features.design import build_run_design
from bids_w2v.features.extract import Features
from bids_w2v.inputs.events import Presentation
from bids_w2v.inputs.filters import CollectOptions, read_filter_file
from bids_w2v.inputs.layout import collect_runs, load_layout, plan_tasks
from bids_w2v.inputs.stimulus_map import presentations_from_map, read_stimulus_map

SPACE = "MNI152NLin2009cAsym"


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _nifti(path: Path, shape: tuple, tr: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.Nifti1Image(np.ones(shape, np.float32), np.eye(4))
    if tr:
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = tr
    img.to_filename(path)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """sub-01 with ses-01/ses-02, tasks listen (runs 1-2, two stimuli each) and rest-like
    'story' (no run entity); fMRIPrep derivatives with two acquisitions of one run."""
    root = tmp_path_factory.mktemp("structure")
    _json(root / "dataset_description.json", {"Name": "s", "BIDSVersion": "1.10.0"})
    fmriprep = root / "derivatives" / "fmriprep"
    _json(fmriprep / "dataset_description.json",
          {"Name": "f", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
           "GeneratedBy": [{"Name": "fMRIPrep"}]})  # fmt: skip
    for name, seconds in (("a.wav", 3.0), ("b.wav", 40.0), ("c.wav", 2.0)):
        (root / "stimuli").mkdir(exist_ok=True)
        sf.write(root / "stimuli" / name, np.zeros(int(seconds * 8000)), 8000)
    stems = []
    for ses in ("01", "02"):
        for run in ("1", "2"):
            stems.append((ses, f"sub-01_ses-{ses}_task-listen_run-{run}"))
        stems.append((ses, f"sub-01_ses-{ses}_task-story"))
    for ses, stem in stems:
        func = root / "sub-01" / f"ses-{ses}" / "func"
        _nifti(func / f"{stem}_bold.nii.gz", (2, 2, 2, 20), 2.0)
        # a 3 s clip at 4 s, a 40 s clip (longer than the 40 s run) at 30 s, silence around
        (func / f"{stem}_events.tsv").write_text(
            "onset\tduration\ttrial_type\tstim_file\n0\t4\tsilence\tn/a\n"
            "4.0\t3.0\tspeech\ta.wav\n30.0\t40.0\tspeech\tb.wav\n"
        )
        dfunc = fmriprep / "sub-01" / f"ses-{ses}" / "func"
        _nifti(dfunc / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz", (2, 2, 2, 20), 2.0)
        _nifti(dfunc / f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz", (2, 2, 2))
        (dfunc / f"{stem}_desc-confounds_timeseries.tsv").write_text("trans_x\n" + "0\n" * 20)
    _json(root / "task-listen_bold.json", {"RepetitionTime": 2.0, "TaskName": "listen"})
    _json(root / "task-story_bold.json", {"RepetitionTime": 2.0, "TaskName": "story"})
    return root


@pytest.fixture(scope="module")
def layout(dataset):
    return load_layout(dataset, dataset / "derivatives" / "fmriprep", validate=True)


def test_sessions_runs_and_stimuli(layout):
    runs = collect_runs(layout, "01", "listen", SPACE, None)
    assert [(r.session, r.run) for r in runs] == [("01", "1"), ("01", "2"), ("02", "1"),
                                                    ("02", "2")]  # fmt: skip
    for run in runs:
        assert [(p.onset, p.stim_file.name) for p in run.presentations] == [
            (4.0, "a.wav"), (30.0, "b.wav")]  # fmt: skip
        assert run.label.startswith("sub-01_ses-")
    story = collect_runs(layout, "01", "story", SPACE, None)
    assert [(r.session, r.run) for r in story] == [("01", None), ("02", None)]


def test_several_tasks_are_fitted_jointly(layout):
    """Both tasks name audio: both by default (alphabetical), --task chooses."""
    assert plan_tasks(layout, ["01"], SPACE).subjects == {"01": ("listen", "story")}
    assert plan_tasks(layout, ["01"], SPACE, None, ["story"]).subjects == {"01": ("story",)}


def test_bids_filter_file_selects_runs(layout, tmp_path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"bold": {"session": "02", "run": [2]}}))
    runs = collect_runs(layout, "01", "listen", SPACE, None,
                        CollectOptions(filters=read_filter_file(path)))  # fmt: skip
    assert [(r.session, r.run) for r in runs] == [("02", "2")]
    path.write_text(json.dumps({"bold": {"session": "03"}}))
    with pytest.raises(InputError, match="No preprocessed BOLD"):
        collect_runs(layout, "01", "listen", SPACE, None,
                     CollectOptions(filters=read_filter_file(path)))  # fmt: skip
    path.write_text(json.dumps({"bold": {"run": None}}))  # null: files without the entity
    runs = collect_runs(layout, "01", "story", SPACE, None,
                        CollectOptions(filters=read_filter_file(path)))  # fmt: skip
    assert len(runs) == 2


def test_desc_label_and_missing_confounds(layout):
    with pytest.raises(InputError, match=r"desc-clean_bold"):
        collect_runs(layout, "01", "listen", SPACE, None, CollectOptions(desc="clean"))
    runs = collect_runs(layout, "01", "listen", SPACE, None, CollectOptions(need_confounds=True))
    assert all(r.confounds is not None for r in runs)


def test_design_with_audio_longer_and_shorter_than_the_run():
    """b.wav runs past the end of the run: its frames after the last scan are ignored; a.wav
    ends early: the rest of the run is silence (zeros before its response and after)."""
    rng = np.random.default_rng(0)
    a = Features(layers={"l": rng.standard_normal((30, 3))}, frame_rate=10.0)  # 3 s
    b = Features(layers={"l": rng.standard_normal((400, 3))}, frame_rate=10.0)  # 40 s
    pres = [Presentation(4.0, Path("a.wav")), Presentation(30.0, Path("b.wav"))]
    feats = {Path("a.wav"): a, Path("b.wav"): b}
    design = build_run_design(pres, feats, ["l"], n_scans=20, tr=2.0)["l"]
    assert design.shape == (20, 3) and np.isfinite(design).all()
    assert np.allclose(design[:2], 0, atol=1e-6)  # nothing heard before 4 s
    only_a = build_run_design(pres[:1], feats, ["l"], n_scans=20, tr=2.0)["l"]
    np.testing.assert_allclose(design[:15], only_a[:15], atol=1e-5)  # b starts at 30 s
    assert np.abs(only_a[-3:]).max() < 0.05 * np.abs(only_a).max()  # response to a has ended
    # starting before the first scan (negative onset after dropped volumes) is fine too
    early = build_run_design([Presentation(-8.0, Path("b.wav"))], feats, ["l"], n_scans=20,
                             tr=2.0)["l"]  # fmt: skip
    assert np.abs(early[0]).max() > 0


def test_stimulus_map_for_each_lpp_language(tmp_path):
    """English sections use 'section-N', Chinese and French 'section_N'; runs != sections."""
    stim = tmp_path / "stimuli"
    stim.mkdir()
    rows = ["task\trun\tstim_file\tonset"]
    for lang, sep, first_run in (("EN", "-", 15), ("CN", "_", 1), ("FR", "_", 1)):
        for section in range(1, 10):
            name = f"task-lpp{lang}_section{sep}{section}.wav"
            (stim / name).write_bytes(b"RIFF")
            rows.append(f"lpp{lang}\t{first_run + section - 1}\t{name}\t0")
    path = tmp_path / "map.tsv"
    path.write_text("\n".join(rows) + "\n")
    table = read_stimulus_map(path)
    pick = lambda task, run: presentations_from_map(  # noqa: E731
        table, {"task": task, "run": run, "subject": "x"}, stim, map_file=path, run_name="r"
    )
    assert pick("lppEN", 15)[0].stim_file.name == "task-lppEN_section-1.wav"
    assert pick("lppEN", 23)[0].stim_file.name == "task-lppEN_section-9.wav"
    assert pick("lppFR", "01")[0].stim_file.name == "task-lppFR_section_1.wav"
    with pytest.raises(InputError, match="no row for r"):
        pick("lppEN", 1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("run\tstim_file\n15\ta.wav\n", "missing onset"),
        ("run\tstim_file\tonset\n15\ta.wav\tsoon\n", "not a number"),
        ("stim_file\tonset\na.wav\t0\n", "no entity column"),
        ("run\tstim_file\tonset\tcolour\n15\ta.wav\t0\tred\n", "unknown colour"),
    ],
)
def test_bad_stimulus_maps(tmp_path, text, match):
    path = tmp_path / "map.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_stimulus_map(path)


def test_stimulus_map_is_confined_to_stimuli(tmp_path):
    (tmp_path / "stimuli").mkdir()
    path = tmp_path / "map.tsv"
    path.write_text("run\tstim_file\tonset\n1\t../secret.wav\t0\n")
    with pytest.raises(InputError, match="not a path relative"):
        presentations_from_map(read_stimulus_map(path), {"run": 1}, tmp_path / "stimuli",
                               map_file=path, run_name="r")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--hrf", "fir"], "needs --fir-delays"),
        (["--fir-delays", "1", "2"], "only applies to --hrf fir"),
        (["--confounds-strategy", "simple", "motion"], "must be given alone"),
        (["--bids-filter-file", "{missing}"], "does not exist"),
        (["--mask", "{missing}"], "does not exist"),
        (["--stimulus-map", "{missing}"], "does not exist"),
        (["--trim-scans", "{missing}"], "does not exist"),
    ],
)
def test_cli_option_errors(dataset, tmp_path, capsys, extra, match):
    extra = [e.replace("{missing}", str(tmp_path / "missing.x")) for e in extra]
    code = main([str(dataset), str(tmp_path / "out"), "participant", "--task", "listen",
                 "-w", str(tmp_path / "w"), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and match in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        [
            "--hrf",
            "glover+derivative",
            "--confounds-strategy",
            "simple",
            "--dummy-scans",
            "3",
            "--trim-scans",
            "2:4",
            "--high-pass",
            "128s",
        ],
        ["--hrf", "fir", "--fir-delays", "2", "3", "4", "5", "6"],
    ],  # fmt: skip
    ids=["derivative-simple-trimmed", "fir"],
)
def test_modelling_options_recover_planted_layers(sim_dataset, tiny_model, tmp_path, options):
    """The HRF, confounds and scan-selection options run end to end and still recover the
    planted voxels of the simulated dataset (planted with the Glover HRF)."""
    root, _, truth = sim_dataset
    out = tmp_path / "out"
    code = main([str(root), str(out), "participant", "--participant-label", "01",
                 "--layers", "conv1,transformer1", "--model", str(tiny_model),
                 "-w", str(tmp_path / "w"), *options])  # fmt: skip
    assert code == 0
    func = out / "sub-01" / "func"
    scores = {}
    for m in func.glob("*_stat-r_statmap.nii.gz"):
        meta = json.loads(m.with_name(m.name.replace(".nii.gz", ".json")).read_text())
        scores[meta["LayerName"]] = np.asarray(nb.load(m).dataobj)
    null = np.ones(scores["conv1"].shape, bool)
    for layer, group in truth.groupby("layer"):
        ijk = tuple(group[["i", "j", "k"]].to_numpy().T)
        null[ijk] = False
        assert scores[layer][ijk].mean() > 0.3, (layer, options)
    assert abs(np.mean([s[null].mean() for s in scores.values()])) < 0.05
    meta = json.loads(next(func.glob("*Conv1_stat-r_statmap.json")).read_text())
    assert meta["HRF"]["Model"] == options[1]


def test_filters_on_run_entities_do_not_clash(layout, tmp_path):
    """Filters naming the run's own entities (session) for masks, confounds and events are
    fine: the run's entities win there; bold filters select the runs."""
    path = tmp_path / "f.json"
    path.write_text(
        json.dumps(
            {
                "bold": {"session": "01"},
                "mask": {"session": "01"},
                "confounds": {"session": "01"},
                "events": {"session": "01"},
            }
        )
    )
    runs = collect_runs(layout, "01", "listen", SPACE, None,
                        CollectOptions(filters=read_filter_file(path)))  # fmt: skip
    assert [(r.session, r.run) for r in runs] == [("01", "1"), ("01", "2")]
    assert all(r.mask is not None and r.confounds is not None for r in runs)


def test_user_mask(layout, dataset, tmp_path):
    mask = tmp_path / "mask.nii.gz"
    _nifti(mask, (2, 2, 2))
    runs = collect_runs(layout, "01", "story", SPACE, None, CollectOptions(mask=mask))
    assert all(r.mask == mask for r in runs)
    _nifti(mask, (3, 2, 2))
    with pytest.raises(InputError, match="not on the grid"):
        collect_runs(layout, "01", "story", SPACE, None, CollectOptions(mask=mask))
