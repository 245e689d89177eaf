"""The participant maps' sidecars are generated from the effective configuration: every value
of the options that change the analysis is recorded, and the slice-time reference each run got."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bids_w2v.inputs.layout import RunInputs
from bids_w2v.outputs.metadata import analysis_metadata
from bids_w2v.outputs.record import config_from_toml, config_to_toml


def _config(*flags):
    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser

    return build_config(build_parser().parse_args(["/d", "/o", "group", *flags]))


def _choices(dest):
    from bids_w2v.cli.parser import build_parser

    (action,) = [a for a in build_parser()._actions if a.dest == dest]
    return list(action.choices)


def _run(run: str, start_time: float | None) -> RunInputs:
    return RunInputs(
        subject="01", task="t", session=None, run=run, bold=Path(f"/d/sub-01_run-{run}_bold.nii"),
        mask=None, confounds=None, events=None, tr=2.0, n_scans=100, presentations=(),
        start_time=start_time,
    )  # fmt: skip


RUNS = [_run("1", 1.0), _run("2", 1.0), _run("3", None)]


@pytest.mark.parametrize("hrf", _choices("hrf_model"))
def test_hrf_recorded(hrf):
    flags = ["--hrf", hrf] + (["--fir-delays", "1", "2"] if hrf == "fir" else [])
    meta = analysis_metadata(_config(*flags), RUNS)["HRF"]
    assert meta["Model"] == hrf
    assert ("FirDelaysScans" in meta) == (hrf == "fir")


@pytest.mark.parametrize("cv", _choices("cv"))
@pytest.mark.parametrize("inner", _choices("inner"))
@pytest.mark.parametrize("search", _choices("alpha_search"))
def test_cross_validation_recorded(cv, inner, search):
    config = _config("--cv", cv, "--inner-cv", inner, "--alpha-search", search)
    meta = analysis_metadata(config, RUNS)["CrossValidation"]
    assert ("contiguous unshuffled folds" in meta["Outer"]) == (cv == "kfold")
    assert meta["NFolds"] == (5 if cv == "kfold" else len(RUNS))
    assert ("leave-one-out" in meta["Inner"]) == (inner == "loo")
    resolved = config.encoding.alpha_search  # auto is resolved in the configuration
    assert ("cannot rule out" in meta["AlphaSearch"]) == (resolved == "exact")
    assert meta["AlphaSearch"].startswith("every alpha")


@pytest.mark.parametrize("strategy", [["none"], ["simple"], ["motion", "global_signal"]])
def test_confounds_recorded(strategy):
    meta = analysis_metadata(_config("--confounds-strategy", *strategy), RUNS)
    assert meta["ConfoundsStrategy"] == strategy


def test_slice_time_ref_per_run():
    hrf = analysis_metadata(_config(), RUNS)["HRF"]  # auto: StartTime 1 s of TR 2 s, or none
    assert hrf["SliceTimeRefSetting"] == "auto"
    assert hrf["SliceTimeRef"] == [0.5, 0.5, 0.0]
    assert hrf["SliceTimeRefPerRun"] == {
        "sub-01_task-t_run-1": 0.5, "sub-01_task-t_run-2": 0.5, "sub-01_task-t_run-3": 0.0,
    }  # fmt: skip
    assert "StartTime / RepetitionTime" in hrf["ScanTimes"]
    fixed = analysis_metadata(_config("--slice-time-ref", "0.25"), RUNS)["HRF"]
    assert fixed["SliceTimeRef"] == 0.25 and fixed["SliceTimeRefSetting"] == 0.25
    json.dumps(fixed)  # a sidecar


@pytest.mark.parametrize("value", ["auto", "0.5"])
def test_slice_time_ref_recorded_and_read_back(value):
    config = _config("--slice-time-ref", value)
    assert config_from_toml(config_to_toml(config)).design == config.design
