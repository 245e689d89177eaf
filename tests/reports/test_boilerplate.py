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
        models=(ModelSpec(random_init=True, seed=7),),
        encoding=EncodingSettings(cv="runs", gap=3, inner="kfold"),
    )
    text = methods_boilerplate(config, n_subjects=1, n_runs=2, task="t")
    assert "random weights (seed 7" in text
    assert "leave-one-run-out" in text and "dropping the 3 training scans" in text
    assert "5-fold contiguous cross-validation" in text


def test_group_boilerplate_follows_what_was_run():
    from bids_w2v.reports.boilerplate import BIBTEX, group_methods_boilerplate

    text = group_methods_boilerplate(
        n_subjects=12, models=["wav2vec2base", "wav2vec2baseRandom"], fdr_q=0.01,
        atlas="destrieux.nii.gz", noise_ceiling=True,
        comparisons=["wav2vec2base - wav2vec2baseRandom"],
    )
    for needle in ("12 participant(s)", "q < 0.01", "Wilcoxon", "Benjamini", "destrieux.nii.gz",
                   "noise ceiling", "wav2vec2base - wav2vec2baseRandom", "Esteban"):
        assert needle in text, needle
    bare = group_methods_boilerplate(
        n_subjects=3, models=["m"], fdr_q=0.05, atlas=None, noise_ceiling=False, comparisons=[]
    )
    assert "noise ceiling" not in bare and "atlas" not in bare and "compared" not in bare
    for key in ("millet2022", "baevski2020", "fmriprep", "nilearn", "nipype", "pybids"):
        assert "{" + key + "," in BIBTEX
