"""The paper's datasets as published: generated replicas of Narratives and Le Petit Prince.

The replicas (bids_w2v/testing/replicas.py) keep the published names, entities and row layouts;
planted
voxels follow one layer of the tiny wav2vec2 at the TRUE presentation times, so recovering them
shows that bids-w2v places the audio where participants heard it.
"""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from bids_w2v.inputs.filters import CollectOptions
from bids_w2v.inputs.layout import collect_participants, collect_runs, load_layout, plan_tasks
from bids_w2v.inputs.stimulus_map import read_stimulus_map
from bids_w2v.testing.replicas import lpp_replica, narratives_replica


@pytest.fixture(scope="module")
def narratives(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("ds002345")
    return root, narratives_replica(root, tiny_model)


@pytest.fixture(scope="module")
def lpp(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("ds003643")
    return root, lpp_replica(root, tiny_model)


def _scores(out, sub):
    scores = {}
    for m in (out / f"sub-{sub}" / "func").glob("*_stat-r_statmap.nii.gz"):
        meta = json.loads(m.with_name(m.name.replace(".nii.gz", ".json")).read_text())
        scores[meta["LayerName"]] = np.asarray(nb.load(m).dataobj)
    return scores


def _recovery(scores, truth):
    """Mean r of each layer's planted voxels, and of the other in-mask voxels."""
    planted = {}
    null = np.isfinite(next(iter(scores.values())))
    for layer, group in truth.groupby("layer"):
        ijk = tuple(group[["i", "j", "k"]].to_numpy().T)
        planted[layer] = float(np.mean(scores[layer][ijk]))
        null[ijk] = False
    return planted, float(np.mean([s[null].mean() for s in scores.values()]))


def _narratives_layout(root):
    return load_layout(root, root / "derivatives" / "afni-nosmooth", validate=True)


def test_narratives_runs_with_and_without_run_entity(narratives):
    root, _ = narratives
    layout = _narratives_layout(root)
    options = CollectOptions(desc="clean")
    pieman = collect_runs(layout, "001", "pieman", "MNI152NLin2009cAsym", None, options)
    assert [r.run for r in pieman] == ["1", "2"]
    for run in pieman:  # two events rows (music, story) naming one file: ONE playback at 0 s
        assert [(p.onset, p.stim_file.name) for p in run.presentations] == [
            (0.0, "pieman_audio.wav")
        ]
        assert run.confounds is None and run.mask is None and run.tr == 1.5
    (tunnel,) = collect_runs(layout, "001", "tunnel", "MNI152NLin2009cAsym", None, options)
    assert tunnel.run is None and tunnel.presentations[0].onset == 3.0


def test_narratives_every_story_by_default(narratives):
    """Without --task both stories are fitted, pieman's runs then tunnel's; on fsaverage6,
    where the replica has pieman only, tunnel is noted and left out."""
    root, _ = narratives
    layout = _narratives_layout(root)
    options = CollectOptions(desc="clean")
    plan = plan_tasks(layout, ["001"], "MNI152NLin2009cAsym", None, (), options)
    assert plan.subjects == {"001": ("pieman", "tunnel")} and plan.notes == ()
    runs = collect_participants(
        layout, ["001"], plan.subjects, "MNI152NLin2009cAsym", None, options
    )["001"]
    assert [r.label for r in runs] == [
        "sub-001_task-pieman_run-1",
        "sub-001_task-pieman_run-2",
        "sub-001_task-tunnel",
    ]
    surface = plan_tasks(layout, ["001"], "fsaverage6", None, (), options)
    assert surface.subjects == {"001": ("pieman",)}
    assert "tunnel not fitted" in surface.notes[0] and "fsaverage6" in surface.notes[0]


def test_narratives_clean_needs_no_confounds(narratives, tiny_model, tmp_path, capsys):
    """desc-clean has no confounds file: asking for confounds is a clear error."""
    root, _ = narratives
    code = main([
        str(root), str(tmp_path / "out"), "participant", "--task", "pieman",
        "-d", f"afni-nosmooth={root / 'derivatives' / 'afni-nosmooth'}", "--desc-label", "clean",
        "--confounds-strategy", "motion", "--model", str(tiny_model), "-w", str(tmp_path / "w"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "No fMRIPrep confounds file" in err
    assert "--confounds-strategy none" in err and "Traceback" not in err


@pytest.mark.slow
def test_narratives_recovery(narratives, tiny_model, tmp_path):
    """afni-nosmooth desc-clean volumes, computed mask, no confounds: planted layers found."""
    root, truth = narratives
    out = tmp_path / "out"
    code = main([
        str(root), str(out), "participant", "--task", "pieman",
        "-d", f"afni-nosmooth={root / 'derivatives' / 'afni-nosmooth'}", "--desc-label", "clean",
        "--layers", "conv1,transformer1", "--model", str(tiny_model), "-w", str(tmp_path / "w"),
    ])  # fmt: skip
    assert code == 0
    planted, null = _recovery(_scores(out, "001"), truth)
    assert min(planted.values()) > 0.5, planted
    assert abs(null) < 0.1
    sidecar = next((out / "sub-001" / "func").glob("*Conv1_stat-r_statmap.json"))
    meta = json.loads(sidecar.read_text())
    assert meta["ConfoundsStrategy"] == ["none"]  # implied by --desc-label clean
    assert meta["BrainMask"] == "nilearn compute_multi_epi_mask"


def test_lpp_layout_is_indexed(lpp):
    """Derivatives in derivatives/sub-*/ without dataset_description.json, no events.tsv."""
    root, _ = lpp
    assert not (root / "derivatives" / "dataset_description.json").exists()
    layout = load_layout(root, root / "derivatives", validate=True)
    options = CollectOptions(
        stimulus_map=read_stimulus_map(root / "code" / "stimulus_map_lppEN.tsv"),
        stimulus_map_file=root / "code" / "stimulus_map_lppEN.tsv",
        dropped_scans=4,
    )
    plan = plan_tasks(layout, ["EN057"], "MNIColin27", None, (), options)  # no --task needed
    assert plan.subjects == {"EN057": ("lppEN",)}
    runs = collect_runs(layout, "EN057", "lppEN", "MNIColin27", None, options)
    assert [r.run for r in runs] == ["15", "16", "17"]
    assert [r.presentations[0].stim_file.name for r in runs] == [
        f"task-lppEN_section-{i}.wav" for i in (1, 2, 3)
    ]
    assert all(r.presentations[0].onset == -8.0 and r.events is None for r in runs)
    assert all(r.tr == 2.0 and r.mask is None and r.confounds is None for r in runs)


def test_lpp_without_map_says_how(lpp, tiny_model, tmp_path, capsys):
    root, _ = lpp
    code = main([
        str(root), str(tmp_path / "out"), "participant", "-d", str(root / "derivatives"),
        "--space", "MNIColin27", "--model", str(tiny_model), "-w", str(tmp_path / "w"),
        "--confounds-strategy", "none",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "No events.tsv" in err and "--stimulus-map" in err


@pytest.mark.slow
def test_lpp_recovery_needs_the_onset_shift(lpp, tiny_model, tmp_path):
    """4 volumes removed by the preprocessing: with --dropped-scans 4 the planted layers are
    recovered; without the shift the design is 8 s late and recovery collapses."""
    root, truth = lpp
    common = [
        "-d", str(root / "derivatives"), "--stimulus-map",
        str(root / "code" / "stimulus_map_lppEN.tsv"), "--space", "MNIColin27",
        "--confounds-strategy", "none", "--layers", "conv1,transformer1",
        "--model", str(tiny_model), "-w", str(tmp_path / "w"),
    ]  # fmt: skip
    results = {}
    for dropped in (4, 0):
        out = tmp_path / f"out{dropped}"
        assert main([str(root), str(out), "participant", "--dropped-scans", str(dropped),
                     *common]) == 0  # fmt: skip
        results[dropped] = _recovery(_scores(out, "EN057"), truth)
    planted, null = results[4]
    assert min(planted.values()) > 0.6, planted
    assert abs(null) < 0.1
    unshifted, _ = results[0]
    for layer in planted:
        assert planted[layer] > unshifted[layer] + 0.3, (planted, unshifted)


@pytest.mark.slow
def test_narratives_recovery_on_fsaverage6(narratives, tiny_model, tmp_path):
    """The paper's input: afni-nosmooth desc-clean GIfTI pairs on fsaverage6."""
    root, truth = narratives
    out = tmp_path / "out"
    code = main([
        str(root), str(out), "participant", "--task", "pieman", "--space", "fsaverage6",
        "-d", f"afni-nosmooth={root / 'derivatives' / 'afni-nosmooth'}", "--desc-label", "clean",
        "--layers", "conv1,transformer1", "--model", str(tiny_model), "-w", str(tmp_path / "w"),
    ])  # fmt: skip
    assert code == 0
    func = out / "sub-001" / "func"
    for layer, group in truth.groupby("layer"):
        values = []
        for hemi, rows in group.groupby("hemi"):
            (gii,) = func.glob(f"*hemi-{hemi}*{layer.capitalize()}_stat-r_statmap.func.gii")
            data = nb.load(gii).darrays[0].data
            values += list(data[rows["vertex"].to_numpy()])
        assert np.mean(values) > 0.5, (layer, values)
