"""The group level reads one layer at a time: its maps, sidecars and tables are identical to
those of the former in-memory implementation (:mod:`tests.group.inmemory_reference`), on maps
with participants' masks that differ, a participant missing a layer, tied peak layers, an
atlas and a noise ceiling."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.group.collection import collect_participant_maps
from bids_w2v.group.comparison import write_model_comparison
from bids_w2v.group.maps import write_group_maps
from bids_w2v.group.significance import GroupTest
from bids_w2v.group.stacks import load_model_stack
from bids_w2v.group.statistics import RunningPeak
from bids_w2v.outputs.maps import peak_layer
from bids_w2v.testing.group_maps import SPACE, write_maps
from tests.group import inmemory_reference as reference

COMMON = {"task": "listen", "space": SPACE, "res": None}
SHAPE = (5, 4, 3)


def edit_map(path: Path, change) -> None:
    img = nb.load(path)
    data = np.asarray(img.get_fdata(), dtype=np.float32)
    change(data)
    nb.save(nb.Nifti1Image(data, img.affine, img.header), path)


@pytest.fixture(scope="module")
def irregular(tmp_path_factory):
    """Participant maps of two models with what the streamed reading must get right."""
    root = tmp_path_factory.mktemp("stream")
    out = root / "bids-w2v"
    subjects = tuple(f"{i:02d}" for i in range(1, 10))
    write_maps(out, subjects=subjects, shape=SHAPE, seed=3)
    func = out / "sub-02" / "func"
    for path in func.glob("*_stat-r_statmap.nii.gz"):  # a smaller mask
        edit_map(path, lambda d: d.__setitem__((slice(0, 2), 0, 0), np.nan))
    one = next(out.glob("sub-03/func/*desc-tinyConv1_stat-r_statmap.nii.gz"))
    edit_map(one, lambda d: d.__setitem__((4, 3, 2), np.nan))  # one layer's mask only
    first = next(out.glob("sub-04/func/*desc-tinyConv0_stat-r_statmap.nii.gz"))
    second = next(out.glob("sub-04/func/*desc-tinyConv1_stat-r_statmap.nii.gz"))
    tie = nb.load(first).get_fdata().astype(np.float32)
    edit_map(second, lambda d: d.__setitem__(..., tie))  # equal layers: the first is the peak
    for path in out.glob("sub-05/func/*desc-tinyTransformer1_stat-r_statmap.*"):
        path.unlink()  # a participant without one layer
    for path in out.glob("sub-06/func/*desc-tinyRandomConv0_stat-r_statmap.*"):
        path.unlink()
    atlas = root / "atlas.nii.gz"
    labels = np.zeros(SHAPE, np.int16)
    labels[:2] = 1
    labels[3:] = 2
    nb.save(nb.Nifti1Image(labels, np.eye(4)), atlas)
    (root / "atlas.tsv").write_text("index\tname\n1\tfront\n2\tback\n")
    ceiling = root / "ceiling.nii.gz"
    values = np.random.default_rng(4).uniform(-0.1, 0.6, SHAPE).astype(np.float32)
    nb.save(nb.Nifti1Image(values, np.eye(4)), ceiling)
    return out, atlas, ceiling


def same_outputs(a: list[Path], root_a: Path, b: list[Path], root_b: Path) -> None:
    names = sorted(str(p.relative_to(root_a)) for p in a)
    assert names == sorted(str(p.relative_to(root_b)) for p in b)
    checked = 0
    for path in sorted(root_a.rglob("*")):
        if not path.is_file():
            continue
        other = root_b / path.relative_to(root_a)
        if path.name.endswith(".nii.gz"):
            x, y = nb.load(path), nb.load(other)
            assert np.array_equal(x.get_fdata(), y.get_fdata(), equal_nan=True), path.name
            assert np.array_equal(x.affine, y.affine)
        elif path.suffix == ".json":
            assert json.loads(path.read_text()) == json.loads(other.read_text()), path.name
        else:
            assert path.read_bytes() == other.read_bytes(), path.name
        checked += 1
    assert checked >= len(a)


@pytest.mark.slow
@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
def test_streamed_group_maps_equal_in_memory(irregular, tmp_path, test):
    out, atlas, ceiling = irregular
    found = collect_participant_maps(out, None, SPACE, None)
    group_test = GroupTest(test, n_permutations=200, seed=1)
    kwargs = {"roi_atlas": atlas, "ceiling_file": ceiling, "group_test": group_test, **COMMON}
    results = {}
    for name, function in [
        ("streamed", write_group_maps),
        ("reference", reference.write_group_maps),
    ]:
        root = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            files = function(found["tiny"], output_dir=root, model_label="tiny", **kwargs)
            files += (
                write_model_comparison if name == "streamed" else reference.write_model_comparison
            )(found["tiny"], found["tinyRandom"], output_dir=root, **kwargs_cmp(kwargs))
        results[name] = (files, root)
    assert len(results["streamed"][0]) > 40
    same_outputs(*results["streamed"], *results["reference"])


def kwargs_cmp(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in ("roi_atlas", "ceiling_file")}


def test_running_peak_equals_peak_layer_of_the_stack(irregular):
    out, _, _ = irregular
    stack = load_model_stack(collect_participant_maps(out, None, SPACE, None)["tiny"])
    flat = stack.scores.reshape(len(stack.layers), len(stack.subjects), -1)
    running = RunningPeak(stack.indices)
    for layer in flat:
        running.add(layer)
    expected = np.stack([peak_layer(flat[:, s], stack.indices) for s in range(flat.shape[1])])
    assert np.array_equal(running.peaks(), expected, equal_nan=True)
    assert np.isnan(expected).any()  # sub-02's smaller mask
