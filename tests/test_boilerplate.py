"""The methods boilerplate follows the configuration it describes."""

from dataclasses import replace
from pathlib import Path

from bids_w2v.config import EncodingSettings, ModelSpec, RunConfig
from bids_w2v.reports.boilerplate import methods_boilerplate

BASE = RunConfig(
    bids_dir=Path("/d"), output_dir=Path("/o"), analysis_level="participant", work_dir=Path("/w")
)


def test_defaults_describe_the_paper():
    text = methods_boilerplate(BASE, n_subjects=3, n_runs=9, task="listen")
    for needle in (
        "facebook/wav2vec2-base",
        "pretrained weights",
        "windows of 10 s",
        "stride of 5 s",
        "Glover HRF",
        "5 contiguous, unshuffled folds",
        "20 values log-spaced from\n10^1 to 10^8",
        "efficient leave-one-out",
        "3 participant(s) (9 run(s)",
        "Millet, J., Caucheteux, C.",
    ):
        assert needle in text, needle


def test_options_change_the_text():
    config = replace(
        BASE,
        model=ModelSpec(random_init=True, seed=7),
        encoding=EncodingSettings(cv="runs", gap=3, inner="kfold"),
    )
    text = methods_boilerplate(config, n_subjects=1, n_runs=2, task="t")
    assert "random weights (seed 7" in text
    assert "leave-one-run-out" in text and "dropping the 3 training scans" in text
    assert "5-fold contiguous cross-validation" in text
