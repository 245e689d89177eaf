"""Derivative names, atomic writes, peak layer and circular mean."""

import json

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.config import RunConfig
from bids_w2v.group.statistics import circular_mean_layer, mean_across_subjects
from bids_w2v.outputs.atomic import write_json
from bids_w2v.outputs.maps import peak_layer
from bids_w2v.outputs.names import (
    BIDSIGNORE,
    layer_desc,
    statmap_path,
    write_dataset_description,
)
from bids_w2v.outputs.record import config_to_toml
from bids_w2v.spaces import VolumeSpace


def test_statmap_names(tmp_path):
    path = statmap_path(
        tmp_path,
        task="listen",
        stat="r",
        space="MNI152NLin2009cAsym",
        res="2",
        subject="01",
        desc=layer_desc("wav2vec2baseRandom", "conv3"),
    )
    assert path == tmp_path / "sub-01" / "func" / (
        "sub-01_task-listen_space-MNI152NLin2009cAsym_res-2_desc-wav2vec2baseRandomConv3"
        "_stat-r_statmap.nii.gz"
    )
    group = statmap_path(
        tmp_path, task="listen", stat="meanr", space="X", desc="m", extension=".json"
    )
    assert group == tmp_path / "task-listen_space-X_desc-m_stat-meanr_statmap.json"
    assert layer_desc("facebook/wav2vec2-base") == "facebookwav2vec2base"


def test_dataset_description(tmp_path):
    write_dataset_description(tmp_path, ["/data/ds"])
    desc = json.loads((tmp_path / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids-w2v"
    assert desc["SourceDatasets"][0]["URL"] == "file:///data/ds"
    assert (tmp_path / ".bidsignore").read_text() == BIDSIGNORE
    assert "Millet" in (tmp_path / "README").read_text()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_volume_roundtrip():
    mask = np.zeros((3, 3, 3), dtype=np.uint8)
    mask[1:, 1:, 1:] = 1
    mask_img = nb.Nifti1Image(mask, np.eye(4))
    values = np.arange(8, dtype=float)
    space = VolumeSpace(mask_img)
    (img,) = space.to_map(values).values()
    assert np.isnan(np.asarray(img.dataobj)[0, 0, 0])
    assert img.get_data_dtype() == np.float32
    np.testing.assert_array_equal(space.from_map(img), values)


def test_peak_layer():
    scores = np.array([[0.1, np.nan, 0.3], [0.2, np.nan, 0.1]])
    np.testing.assert_array_equal(peak_layer(scores, [4, 9])[[0, 2]], [9, 4])
    assert np.isnan(peak_layer(scores, [4, 9])[1])


def test_circular_mean_layer():
    # K = 19 layers, period 20: layers 19 and 1 average to 0 (wrap around), not 10
    peaks = np.array([[19.0, 5.0, np.nan], [1.0, 7.0, np.nan]])
    out = circular_mean_layer(peaks, 19)
    assert out[0] == pytest.approx(0.0, abs=1e-9) or out[0] == pytest.approx(20.0, abs=1e-9)
    assert out[1] == pytest.approx(6.0)
    assert np.isnan(out[2])


def test_mean_across_subjects_nan_outside_any_mask():
    maps = np.array([[1.0, np.nan], [3.0, 2.0]])
    out = mean_across_subjects(maps)
    assert out[0] == 2.0 and np.isnan(out[1])


def test_config_toml(tmp_path):
    from pathlib import Path

    text = config_to_toml(
        RunConfig(
            bids_dir=Path("/d"),
            output_dir=Path("/o"),
            analysis_level="participant",
            work_dir=Path("/w"),
        )
    )
    assert 'bids_dir = "/d"' in text and "window_s = 10.0" in text and "[bids_w2v.encoding]" in text


@pytest.mark.parametrize(
    ("value", "gb"), [("16000", 16.0), ("16GB", 16.0), ("512MB", 0.512), ("2g", 2.0), ("1TB", 1e3)]
)
def test_memory_like_fmriprep(value, gb):
    from bids_w2v.cli.parser import build_parser

    args = build_parser().parse_args(["/d", "/o", "participant", "--mem", value])
    assert args.mem_gb == pytest.approx(gb)


def test_participant_maps_with_excluded_voxels(tmp_path):
    import warnings

    from bids_w2v.outputs.maps import write_participant_maps

    mask_img = nb.Nifti1Image(np.ones((2, 2, 1), dtype=np.uint8), np.eye(4))
    nan = np.nan
    results = [
        {
            "scores": np.array([0.2, nan, 0.1, 0.0]),
            "fold_scores": np.array([[0.2, nan, 0.1, 0.0]]),
            "alphas": np.array([[10.0, nan, 100.0, 1e8]]),
            "excluded": np.array([0, 1, 0, 0], bool),
        },
        {
            "scores": np.array([0.1, nan, 0.3, 0.0]),
            "fold_scores": np.array([[0.1, nan, 0.3, 0.0]]),
            "alphas": np.array([[1e3, nan, 1e4, 1e8]]),
            "excluded": np.array([0, 1, 0, 0], bool),
        },
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = write_participant_maps(
            results,
            ["conv0", "transformer0"],
            [0, 7],
            mask_img,
            output_dir=tmp_path,
            subject="01",
            task="t",
            space="MNI152NLin2009cAsym",
            res=None,
            model_label="m",
            metadata={"Model": "m"},
        )
    assert len(files) == 4
    peak = np.asarray(nb.load(files[2]).dataobj).ravel()
    alpha = np.asarray(nb.load(files[3]).dataobj).ravel()
    np.testing.assert_array_equal(peak[[0, 2]], [0, 7])
    assert np.isnan(peak[1]) and np.isnan(alpha[1])
    np.testing.assert_allclose(alpha[[0, 2]], [10.0, 1e4])
    meta = json.loads(files[0].with_name(files[0].name.replace(".nii.gz", ".json")).read_text())
    assert meta["ExcludedVoxels"] == 1 and meta["LayerIndex"] == 0


def test_task_label_of_joint_fits():
    """One task: its label (names as before); several: joined, a valid BIDS label naming each;
    too many for a file name: their count and a hash."""
    import re
    from pathlib import Path

    from bids_w2v.outputs.names import MAX_TASK_LABEL, task_label

    assert task_label(["pieman"]) == "pieman"
    assert task_label(["pieman", "pieman"]) == "pieman"
    assert task_label(["pieman", "tunnel", "21styear"]) == "piemanTunnel21styear"
    stories = [f"story{i:02d}" for i in range(16)]
    long = task_label(stories)
    assert re.fullmatch(r"16tasks[0-9a-f]{8}", long) and long != task_label(stories[::-1])
    assert len(task_label(stories[:5])) <= MAX_TASK_LABEL
    for label in (task_label(["pieman", "tunnel"]), long):
        path = statmap_path(Path("/o"), task=label, stat="r", desc="m", space="X", subject="01")
        assert re.fullmatch(r"sub-01_task-[A-Za-z0-9]+_space-X_desc-m_stat-r_statmap\.nii\.gz",
                            path.name)  # fmt: skip
