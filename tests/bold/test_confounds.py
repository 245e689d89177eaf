"""Confounds strategies, non-steady-state volumes, dummy scans and trims (bids_w2v.bold.confounds),
on nilearn's shipped confounds files from real fMRIPrep runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nb
import nilearn
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_w2v.bold.cleaning import clean_bold
from bids_w2v.bold.confounds import (
    ScanTrim,
    check_strategy,
    kept_scans,
    load_run_confounds,
    parse_high_pass,
    parse_trim,
    read_trim_table,
    trim_for_run,
)
from bids_w2v.errors import InputError
from bids_w2v.features.design import build_run_design
from bids_w2v.features.extract import Features
from bids_w2v.inputs.events import Presentation

NILEARN_DATA = Path(nilearn.__file__).parent / "interfaces" / "fmriprep" / "data"
REAL = NILEARN_DATA / "test-v21_desc-confounds_timeseries.tsv"  # 30 rows, 3 non-steady
pytestmark = pytest.mark.skipif(not REAL.is_file(), reason="nilearn's fMRIPrep test data absent")


def _run(tmp_path, confounds=REAL, n_scans=30, seed=0):
    """A 30-volume BOLD next to a real fMRIPrep confounds file (nilearn's naming lookup)."""
    bold = tmp_path / "sub-01_task-a_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    rng = np.random.default_rng(seed)
    img = nb.Nifti1Image(1000 + rng.standard_normal((3, 3, 3, n_scans)).astype(np.float32),
                         np.eye(4))  # fmt: skip
    img.to_filename(bold)
    shutil.copy(confounds, tmp_path / "sub-01_task-a_desc-confounds_timeseries.tsv")
    json_file = confounds.with_suffix(".json")
    if json_file.is_file():
        shutil.copy(json_file, tmp_path / "sub-01_task-a_desc-confounds_timeseries.json")
    mask = nb.Nifti1Image(np.ones((3, 3, 3), np.uint8), np.eye(4))
    return bold, mask


def test_non_steady_state_volumes_dropped_by_every_strategy(tmp_path):
    bold, _ = _run(tmp_path)
    table = pd.read_csv(REAL, sep="\t")
    outliers = sorted(
        int(np.flatnonzero(table[c])[0]) for c in table if c.startswith("non_steady_state")
    )
    assert outliers == [0, 1, 2]
    for strategy in [("simple",), ("compcor",), ("motion", "wm_csf"), ("none",)]:
        confounds, mask = load_run_confounds(bold, 30, strategy)
        assert list(mask) == list(range(3, 30)), strategy
        if confounds is not None:  # NaN first rows of derivative columns are filled
            assert not confounds.isna().any().any() and len(confounds) == 30


def test_none_without_confounds_file(tmp_path):
    bold = tmp_path / "sub-01_task-a_space-MNI152NLin2009cAsym_desc-clean_bold.nii.gz"
    nb.Nifti1Image(np.ones((2, 2, 2, 5), np.float32), np.eye(4)).to_filename(bold)
    assert load_run_confounds(bold, 5, ("none",)) == (None, None)
    with pytest.raises(InputError, match="--confounds-strategy none"):
        load_run_confounds(bold, 5, ("motion",))


def test_scrubbing_everything_is_a_clear_error(tmp_path):
    bold, _ = _run(tmp_path)  # the shipped file's FD exceeds nilearn's threshold everywhere
    with pytest.raises(InputError, match="censors every volume"):
        load_run_confounds(bold, 30, ("scrubbing",))


def test_rows_must_match_volumes(tmp_path):
    bold, mask = _run(tmp_path, n_scans=31)
    with pytest.raises(InputError, match="30 rows but the BOLD has 31 volumes"):
        clean_bold(bold, mask, tr=2.0, confounds_strategy=("motion",))


def test_clean_bold_drops_the_same_scans_everywhere(tmp_path):
    """Non-steady (0-2), dummy (first 5) and trimmed (last 4) volumes leave the BOLD, and the
    design built on the full grid keeps exactly the same rows."""
    bold, mask = _run(tmp_path)
    data, kept = clean_bold(
        bold, mask, tr=2.0, confounds_strategy=("wm_csf",), dummy_scans=5, trim=(0, 4),
        high_pass=0.01,
    )  # fmt: skip
    assert list(kept) == list(range(5, 26)) and data.shape == (21, 27)
    np.testing.assert_allclose(data.mean(0), 0, atol=1e-4)
    feats = Features(layers={"l": np.random.default_rng(0).standard_normal((300, 4))},
                     frame_rate=10.0)  # fmt: skip
    stim = Path("s.wav")
    full = build_run_design([Presentation(-3.0, stim)], {stim: feats}, ["l"], n_scans=30, tr=2.0)
    kept_design = build_run_design(
        [Presentation(-3.0, stim)], {stim: feats}, ["l"], n_scans=30, tr=2.0, kept=kept
    )
    np.testing.assert_array_equal(kept_design["l"], full["l"][kept])


def test_strategy_validation():
    assert check_strategy(["simple"]) == ("simple",)
    assert check_strategy(["motion", "compcor"]) == ("motion", "compcor")
    assert check_strategy([]) == ("none",)
    for bad, match in [(["none", "motion"], "mixes 'none'"), (["simple", "motion"], "alone"),
                       (["motoin"], "unknown value")]:  # fmt: skip
        with pytest.raises(InputError, match=match):
            check_strategy(bad)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    mask=st.none() | st.sets(st.integers(0, 59)),
    dummy=st.integers(0, 70),
    start=st.integers(0, 70),
    end=st.integers(0, 70),
)
def test_kept_scans_properties(n, mask, dummy, start, end):
    sample = None if mask is None else np.array(sorted(i for i in mask if i < n), dtype=int)
    expected = [
        i for i in range(n)
        if (sample is None or i in sample) and i >= max(dummy, start) and i < n - end
    ]  # fmt: skip
    try:
        kept = kept_scans(n, sample, dummy_scans=dummy, trim=ScanTrim(start, end))
    except InputError as exc:
        assert len(expected) < 3 and "remain" in str(exc)
    else:
        assert list(kept) == expected


@pytest.mark.parametrize(
    ("text", "hz"), [("128s", 1 / 128), ("0.008Hz", 0.008), ("100", 0.01), ("0.01", 0.01)]
)
def test_high_pass(text, hz):
    assert parse_high_pass(text) == pytest.approx(hz)


def test_high_pass_refused():
    for bad in ("0s", "-1", "fast"):
        with pytest.raises(ValueError):
            parse_high_pass(bad)


def test_trim_global_and_per_task(tmp_path):
    assert parse_trim("10") == ScanTrim(10, 0) and parse_trim("3:2") == ScanTrim(3, 2)
    path = tmp_path / "trims.tsv"
    path.write_text("task\trun\tstart\tend\npieman\tn/a\t8\t0\npieman\t2\t10\t3\ntunnel\t\t6\t\n")
    assert parse_trim(str(path)) == path
    table = read_trim_table(path)
    assert trim_for_run(table, {"task": "pieman", "run": "1"}) == ScanTrim(8, 0)
    assert trim_for_run(table, {"task": "pieman", "run": 2}) == ScanTrim(10, 3)
    assert trim_for_run(table, {"task": "tunnel", "run": None}) == ScanTrim(6, 0)
    assert trim_for_run(table, {"task": "other"}) == ScanTrim()
    path.write_text("task\tstart\npieman\tmany\n")
    with pytest.raises(InputError, match="whole numbers"):
        read_trim_table(path)
    path.write_text("task\tbegin\npieman\t3\n")
    with pytest.raises(InputError, match="missing start"):
        read_trim_table(path)


def test_scan_trims_per_run(tmp_path):
    from types import SimpleNamespace

    from bids_w2v.bold.confounds import scan_trims

    path = tmp_path / "trims.tsv"
    path.write_text("task\tstart\tend\npieman\t8\t2\n")
    runs = [
        SimpleNamespace(subject="001", session=None, task=t, run=r, bold=Path("b"))
        for t, r in (("pieman", "1"), ("pieman", None), ("tunnel", None))
    ]
    assert scan_trims(runs, read_trim_table(path)) == [(8, 2), (8, 2), (0, 0)]
    assert scan_trims(runs, ScanTrim(3, 0)) == [(3, 0)] * 3


def test_scrubbing_censors_high_motion_volumes(tmp_path):
    """A motion spike in an otherwise still run: the scrubbing preset censors it (and the
    non-steady volumes); BOLD rows and the sample mask agree."""
    table = pd.read_csv(REAL, sep="\t")
    table["framewise_displacement"] = [np.nan] + [0.05] * 29
    table.loc[15, "framewise_displacement"] = 3.0
    table["std_dvars"] = [np.nan] + [1.0] * 29
    edited = tmp_path / "src" / "x_desc-confounds_timeseries.tsv"
    edited.parent.mkdir()
    table.to_csv(edited, sep="\t", index=False, na_rep="n/a")
    bold, mask = _run(tmp_path, confounds=edited)
    _, sample = load_run_confounds(bold, 30, ("scrubbing",))
    assert 15 not in sample and not {0, 1, 2} & set(sample) and len(sample) >= 20
    data, kept = clean_bold(bold, mask, tr=2.0, confounds_strategy=("wm_csf", "scrub"))
    assert list(kept) == list(sample) and data.shape[0] == len(kept)
    # the preset's 33 regressors do not fit in the 26 volumes left: a clear error
    with pytest.raises(InputError, match="too few for 33 confound regressors"):
        clean_bold(bold, mask, tr=2.0, confounds_strategy=("scrubbing",))
