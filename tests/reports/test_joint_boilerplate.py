"""The methods text describes --joint when it was run, and only then."""

from dataclasses import replace
from pathlib import Path

from bids_w2v.config import EncodingSettings, RunConfig
from bids_w2v.reports.boilerplate import methods_boilerplate

BASE = RunConfig(
    bids_dir=Path("/d"), output_dir=Path("/o"), analysis_level="participant", work_dir=Path("/w")
)


def test_joint_paragraph_follows_the_config():
    text = methods_boilerplate(BASE, n_subjects=1, n_runs=2, task="t")
    assert "banded ridge" not in text and "Nunez-Elizalde" not in text
    config = replace(
        BASE,
        encoding=EncodingSettings(
            joint=("wav2vec2base:transformer6", "mel"), joint_n_iter=12, joint_seed=4
        ),
    )
    text = methods_boilerplate(config, n_subjects=1, n_runs=2, task="t")
    for needle in (
        "wav2vec2base:transformer6, mel",
        "banded ridge",
        "himalaya 0.4.11",
        "12 weightings",
        "seed 4",
        "unique r²",
        "Nunez-Elizalde, A. O.",
        "Dupré la Tour",
        "efficient leave-one-out",  # the default --joint-solver loo
    ):
        assert needle in text, needle
    config = replace(config, encoding=replace(config.encoding, joint_solver="himalaya"))
    text = methods_boilerplate(config, n_subjects=1, n_runs=2, task="t")
    assert "5-fold contiguous" in text and "leave-one-out" not in text
