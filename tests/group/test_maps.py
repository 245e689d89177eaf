"""The group level, which reads one layer at a time, against values computed here directly
from the participant maps on disk (nibabel, numpy, scipy.stats.wilcoxon,
scipy.stats.false_discovery_control, and nilearn's permuted_ols as --group-test permutation
specifies it), on maps with participants' masks that differ, a participant missing a layer,
tied peak layers, an atlas and a noise ceiling."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from nilearn.mass_univariate import permuted_ols
from scipy import stats

from bids_w2v.group.collection import collect_participant_maps
from bids_w2v.group.comparison import write_model_comparison
from bids_w2v.group.maps import write_group_maps
from bids_w2v.group.significance import GroupTest
from bids_w2v.group.stacks import open_model_maps
from bids_w2v.group.statistics import RunningPeak
from bids_w2v.testing.group_maps import INDICES, LAYERS, SPACE, write_maps

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
    rng = np.random.default_rng(5)  # one slice of one layer without effect: p from 0 to 1
    for path in sorted(out.glob("sub-*/func/*desc-tinyTransformer0_stat-r_statmap.nii.gz")):
        edit_map(path, lambda d: d.__setitem__((..., 2), rng.normal(0.01, 0.03, d.shape[:2])))
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


SUBJECTS = [f"{i:02d}" for i in range(1, 10)]


def desc(model: str, layer: str = "") -> str:
    return model + layer[:1].upper() + layer[1:]


def participant_layer(out: Path, model: str, layer: str) -> np.ndarray:
    """(subjects, voxels) float64 read with nibabel; NaN rows for a participant without it."""
    rows = np.full((len(SUBJECTS), int(np.prod(SHAPE))), np.nan)
    for row, sub in enumerate(SUBJECTS):
        name = f"sub-{sub}/func/*desc-{desc(model, layer)}_stat-r_statmap.nii.gz"
        for path in out.glob(name):
            rows[row] = np.asarray(nb.load(path).get_fdata()).ravel()
    return rows


def read(root: Path, description: str, stat: str) -> np.ndarray:
    name = f"task-listen_space-{SPACE}_desc-{description}_stat-{stat}_statmap.nii.gz"
    return np.asarray(nb.load(root / name).get_fdata()).ravel()


def read_table(root: Path, description: str, stat: str) -> pd.DataFrame:
    name = f"task-listen_space-{SPACE}_desc-{description}_stat-{stat}_summary.tsv"
    return pd.read_csv(root / name, sep="\t", na_values="n/a", keep_default_na=False)


def expected_tests(values: np.ndarray, test: GroupTest) -> dict[str, np.ndarray]:
    """p and BH q (scipy, voxel by voxel) or sign-flip t and FWE p (nilearn's permuted_ols
    with an intercept-only design, as the --group-test spec says) where every subject is
    finite; NaN elsewhere."""
    ok = np.isfinite(values).all(axis=0)
    first, second = np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
    if test.test == "wilcoxon":
        for v in np.flatnonzero(ok):
            first[v] = stats.wilcoxon(values[:, v]).pvalue
        if ok.any():
            second[ok] = stats.false_discovery_control(first[ok], method="bh")
        return {"p": first, "q": second}
    if ok.any():
        res = permuted_ols(
            np.ones((values.shape[0], 1)), values[:, ok], model_intercept=False,
            n_perm=test.n_permutations, two_sided_test=True, random_state=test.seed,
            n_jobs=1, verbose=0, output_type="dict",
        )  # fmt: skip
        first[ok] = stats.ttest_1samp(values[:, ok], 0).statistic
        second[ok] = 10.0 ** -res["logp_max_t"][0]
    return {"t": first, "fwep": second}


def peaks(scores: np.ndarray) -> np.ndarray:
    """LayerIndex of the highest of (layers, voxels) scores, the first of equal ones; NaN
    where no layer is finite."""
    best = np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=0)
    out = np.asarray(INDICES, dtype=np.float64)[best]
    out[~np.isfinite(scores).any(axis=0)] = np.nan
    return out


def circular_peak(sub_peaks: np.ndarray) -> np.ndarray:
    """The paper's circular mean angle(mean exp(2 i pi k / (K + 1))) of the positions k among
    the K layers, rounded to the nearest layer compared (the indices are not contiguous)."""
    n_layers = len(INDICES)
    position = np.full(sub_peaks.shape, np.nan)
    for k, index in enumerate(INDICES):
        position[sub_peaks == index] = k
    out = np.full(sub_peaks.shape[1], np.nan)
    for v in range(sub_peaks.shape[1]):
        k = position[:, v][np.isfinite(position[:, v])]
        if len(k):
            angle = np.angle(np.mean(np.exp(2j * np.pi * k / (n_layers + 1))))
            nearest = int(np.rint(np.mod(angle * (n_layers + 1) / (2 * np.pi), n_layers + 1)))
            out[v] = INDICES[nearest % (n_layers + 1) % n_layers]
    return out


def sem(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(stats.sem(finite)) if len(finite) >= 2 else np.nan


def region_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else np.nan


def expected_roi_table(scores, group_peak, labels) -> pd.DataFrame:
    inside = np.isfinite(scores).any(axis=(0, 1))
    regions = [(-1, "wholebrain", inside), (1, "front", inside & (labels == 1))]
    regions.append((2, "back", inside & (labels == 2)))
    rows = []
    for roi_index, roi, where in regions:
        for layer, index, layer_scores in zip(LAYERS, INDICES, scores, strict=True):
            per_subject = np.array([region_mean(s[where]) for s in layer_scores])
            ok = np.isfinite(per_subject)
            rows.append({
                "model": "tiny", "roi_index": roi_index, "roi": roi, "layer": layer,
                "layer_index": index, "mean": per_subject[ok].mean(), "sem": sem(per_subject),
                "n_subjects": int(ok.sum()), "n_voxels": int(where.sum()),
                "percent_peak": 100 * np.mean(group_peak[where] == index),
            })  # fmt: skip
    return pd.DataFrame(rows)


def expected_comparison_table(a: dict, b: dict) -> pd.DataFrame:
    rows = []
    for layer, index in zip(LAYERS, INDICES, strict=True):
        both = np.isfinite(a[layer]) & np.isfinite(b[layer])
        wa = np.array([region_mean(s[w]) for s, w in zip(a[layer], both, strict=True)])
        wb = np.array([region_mean(s[w]) for s, w in zip(b[layer], both, strict=True)])
        diff = wa - wb
        test = stats.wilcoxon(diff) if np.isfinite(diff).all() else None
        rows.append({
            "model_a": "tiny", "model_b": "tinyRandom", "layer": layer, "layer_index": index,
            "mean_a": wa.mean(), "mean_b": wb.mean(), "mean_difference": diff.mean(),
            "sem_difference": sem(diff), "n_subjects": len(SUBJECTS),
            "wilcoxon_statistic": test.statistic if test else np.nan,
            "p": test.pvalue if test else np.nan,
        })  # fmt: skip
    table = pd.DataFrame(rows)
    ok = table["p"].notna()
    table["q"] = np.nan
    table.loc[ok, "q"] = stats.false_discovery_control(table.loc[ok, "p"], method="bh")
    return table


def assert_table(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        found, expected, check_dtype=False, check_exact=False, rtol=2e-5, atol=1e-7
    )


@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
def test_streamed_group_maps_equal_direct_computation(irregular, tmp_path, test):
    out, atlas, ceiling = irregular
    found = collect_participant_maps(out, None, SPACE, None)
    group_test = GroupTest(test, n_permutations=200, seed=1)
    root = tmp_path / "group"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = write_group_maps(
            found["tiny"], output_dir=root, model_label="tiny", roi_atlas=atlas,
            ceiling_file=ceiling, group_test=group_test, **COMMON,
        )  # fmt: skip
        files += write_model_comparison(
            found["tiny"], found["tinyRandom"], output_dir=root, group_test=group_test, **COMMON
        )
    a = {layer: participant_layer(out, "tiny", layer) for layer in LAYERS}
    b = {layer: participant_layer(out, "tinyRandom", layer) for layer in LAYERS}
    assert np.isnan(a["transformer1"][4]).all() and np.isnan(b["conv0"][5]).all()
    ceiling_values = np.asarray(nb.load(ceiling).get_fdata()).ravel()
    tests = ("p", "q") if test == "wilcoxon" else ("t", "fwep")
    names = set()
    means = np.stack([a[layer].mean(axis=0) for layer in LAYERS])  # NaN where any is NaN
    for layer, index, mean in zip(LAYERS, INDICES, means, strict=True):
        d = desc("tiny", layer)
        expected = {"meanr": mean, **expected_tests(a[layer], group_test)}
        level = expected[tests[1]]
        expected["meanrthresh"] = np.where(level < 0.05, mean, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected["normr"] = np.where(ceiling_values > 0, mean / ceiling_values, np.nan)
        d_cmp = desc("tinyMinustinyRandom", layer)
        diff = a[layer] - b[layer]
        mean_diff = diff.mean(axis=0)
        expected_cmp = {"meandiff": mean_diff, **expected_tests(diff, group_test)}
        level = expected_cmp[tests[1]]
        expected_cmp["meandiffthresh"] = np.where(level < 0.05, mean_diff, np.nan)
        for description, maps in ((d, expected), (d_cmp, expected_cmp)):
            for stat, values in maps.items():
                np.testing.assert_allclose(
                    read(root, description, stat), values, rtol=2e-6, atol=1e-7,
                    err_msg=f"{description} {stat}",
                )  # fmt: skip
                names.add(f"desc-{description}_stat-{stat}_statmap.nii.gz")
                sidecar = root / (
                    f"task-listen_space-{SPACE}_desc-{description}_stat-{stat}_statmap.json"
                )
                meta = json.loads(sidecar.read_text())
                assert meta["LayerName"] == layer and meta["LayerIndex"] == index
                assert meta["NumberOfSubjects"] == len(SUBJECTS)
    assert np.isnan(read(root, desc("tiny", "transformer1"), tests[0])).all()  # sub-05
    level = read(root, desc("tiny", "transformer0"), tests[1])
    assert (level < 0.05).any() and (level[np.isfinite(level)] >= 0.05).any()
    sub02 = np.ravel_multi_index(([0, 1], [0, 0], [0, 0]), SHAPE)  # sub-02's smaller mask
    untested = np.isnan(read(root, desc("tiny", "conv0"), tests[0]))
    np.testing.assert_array_equal(np.flatnonzero(untested), sub02)
    group_peak = peaks(means)
    sub_peaks = np.stack([peaks(np.stack([a[n][s] for n in LAYERS])) for s in range(9)])
    assert np.isnan(sub_peaks[1, sub02]).all() and np.isnan(group_peak[sub02]).all()
    np.testing.assert_array_equal(read(root, "tiny", "peaklayer"), group_peak)
    np.testing.assert_array_equal(read(root, "tiny", "circpeaklayer"), circular_peak(sub_peaks))
    counts = pd.DataFrame(
        [
            {
                "participant_id": f"sub-{sub}", "layer": layer, "layer_index": index,
                "n_voxels": int(np.sum(sub_peaks[s] == index)),
                "percent": 100 * np.sum(sub_peaks[s] == index) / np.isfinite(sub_peaks[s]).sum(),
            }
            for s, sub in enumerate(SUBJECTS)
            for layer, index in zip(LAYERS, INDICES, strict=True)
        ]
    )  # fmt: skip
    assert_table(read_table(root, "tiny", "peaklayer"), counts)
    labels = np.asarray(nb.load(atlas).dataobj).ravel()
    scores = np.stack([a[layer] for layer in LAYERS])
    assert_table(read_table(root, "tiny", "roi"), expected_roi_table(scores, group_peak, labels))
    assert_table(
        read_table(root, "tinyMinustinyRandom", "comparison"), expected_comparison_table(a, b)
    )
    names |= {f"desc-tiny_stat-{s}_statmap.nii.gz" for s in ("peaklayer", "circpeaklayer")}
    names |= {"desc-tiny_stat-peaklayer_summary.tsv", "desc-tiny_stat-roi_summary.tsv"}
    names.add("desc-tinyMinustinyRandom_stat-comparison_summary.tsv")
    assert sorted(f.name for f in files) == sorted(
        f"task-listen_space-{SPACE}_{name}" for name in names
    )
    meta = json.loads(next(root.glob("*desc-tiny_stat-roi_summary.json")).read_text())
    assert meta["Participants"] == SUBJECTS and meta["NumberOfSubjects"] == len(SUBJECTS)


def test_running_peak_equals_peak_of_all_layers(irregular):
    """Layers given one at a time: the peak found with every layer at once (ties: the first)."""
    out, _, _ = irregular
    maps = open_model_maps(collect_participant_maps(out, None, SPACE, None)["tiny"])
    assert maps.layers == LAYERS and maps.subjects == SUBJECTS
    running = RunningPeak(maps.indices)
    for layer in maps.layers:
        running.add(maps.layer(layer).reshape(len(SUBJECTS), -1))
    scores = np.stack([participant_layer(out, "tiny", layer) for layer in LAYERS])
    expected = np.stack([peaks(scores[:, s]) for s in range(len(SUBJECTS))])
    assert np.array_equal(running.peaks(), expected, equal_nan=True)
    assert np.isnan(expected).any()  # sub-02's smaller mask
    assert (expected[3] == 0).any() and (expected[3] != 1).all()  # sub-04: conv1 = conv0
