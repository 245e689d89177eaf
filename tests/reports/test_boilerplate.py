"""The methods boilerplate follows the configuration it describes."""

from dataclasses import replace
from pathlib import Path

import pytest

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


def _config(*flags):
    """The configuration the command line builds (parser -> build_config), as a user gets it."""
    from bids_w2v.cli.build import build_config
    from bids_w2v.cli.parser import build_parser

    args = build_parser().parse_args(["/d", "/o", "group", *flags])
    return build_config(args)


def _choices(dest):
    from bids_w2v.cli.parser import build_parser

    (action,) = [a for a in build_parser()._actions if a.dest == dest]
    return list(action.choices)


HRF_NEEDLES = {
    "glover": ("the Glover HRF sampled",),
    "spm": ("the SPM HRF sampled",),
    "glover+derivative": ("the Glover HRF and with its time derivative",),
    "spm+derivative": ("the SPM HRF and with its time derivative",),
    "fir": ("finite impulse response", "delayed\nby 1, 2, 3 scan(s)"),
}


@pytest.mark.parametrize("hrf", _choices("hrf_model"))
def test_every_hrf_is_named(hrf):
    flags = ["--hrf", hrf] + (["--fir-delays", "1", "2", "3"] if hrf == "fir" else [])
    text = methods_boilerplate(_config(*flags), n_subjects=1, n_runs=1, task="t")
    flat = " ".join(text.split())
    for needle in HRF_NEEDLES[hrf]:
        assert " ".join(needle.split()) in flat, (hrf, needle)
    assert ("time derivative" in flat) == hrf.endswith("+derivative")
    assert ("finite impulse response" in flat) == (hrf == "fir")
    assert ("Glover" in flat) == hrf.startswith("glover")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ((), "strategy (motion, wm_csf, high_pass)"),
        (("--confounds-strategy", "simple"), "strategy (simple)"),
        (("--confounds-strategy", "compcor"), "strategy (compcor)"),
        (("--confounds-strategy", "motion", "global_signal"), "strategy (motion, global_signal)"),
        (("--confounds-strategy", "none"), "was used as preprocessed"),
        (("--desc-label", "clean"), "was used as preprocessed"),
        (("--cv", "kfold", "--n-folds", "4"), "4 contiguous, unshuffled folds"),
        (("--cv", "runs"), "leave-one-run-out folds"),
        (("--inner-cv", "loo"), "efficient leave-one-out cross-validation"),
        (("--inner-cv", "kfold"), "5-fold contiguous cross-validation"),
        (("--alpha-search", "full"), "by efficient leave-one-out cross-validation on the training data."),  # noqa: E501
        (("--alpha-search", "exact"), "could not be the first minimum were not evaluated"),
        (("--alpha-search", "local"), "gives the choice of the full grid"),
        (("--alpha-search", "auto", "--inner-cv", "kfold"), "5-fold contiguous cross-validation on the training data (values"),  # noqa: E501
    ],
)
def test_every_option_value_is_named(flags, needle):
    text = methods_boilerplate(_config(*flags), n_subjects=1, n_runs=1, task="t")
    assert " ".join(needle.split()) in " ".join(text.split()), (flags, needle)


def test_group_boilerplate_attributes_each_ceiling_method():
    from bids_w2v.reports.boilerplate import group_methods_boilerplate

    common = dict(n_subjects=4, models=["m"], fdr_q=0.05, atlas=None, noise_ceiling=True,
                  comparisons=[])
    paper = group_methods_boilerplate(**common, noise_ceiling_method="paper")
    voxelwise = group_methods_boilerplate(**common, noise_ceiling_method="voxelwise")
    assert "authors' code [@millet2022]" in paper and "100" in paper and "RidgeCV" in paper
    assert "voxelwise" in voxelwise and "differs from the authors'" in voxelwise
    assert "RidgeCV" not in voxelwise


def test_group_boilerplate_names_the_group_test():
    from bids_w2v.reports.boilerplate import BIBTEX, group_methods_boilerplate

    common = dict(n_subjects=4, models=["m"], fdr_q=0.05, atlas=None, noise_ceiling=False,
                  comparisons=["a - b"])
    wilcoxon = group_methods_boilerplate(**common).split("### References")[0]
    permutation = group_methods_boilerplate(**common, group_test="permutation")
    assert "Wilcoxon signed-rank test" in wilcoxon and "permutation" not in wilcoxon
    assert "sign-flip permutation" in permutation and "FWE-corrected p < 0.05" in permutation
    assert "[@nichols2002]" in permutation and "{nichols2002," in BIBTEX


def test_participant_boilerplate_describes_participant_stats():
    from bids_w2v.config import EncodingSettings, RunConfig
    from bids_w2v.reports.boilerplate import methods_boilerplate

    base = dict(bids_dir=".", output_dir="out", analysis_level="participant")
    on = methods_boilerplate(RunConfig(**base), n_subjects=1, n_runs=2, task="t")
    off = methods_boilerplate(
        RunConfig(**base, encoding=EncodingSettings(participant_stats=False)),
        n_subjects=1, n_runs=2, task="t",
    )
    assert "Bartlett's effective degrees of freedom" in on and "[@benjamini1995]" in on
    assert "Bartlett" not in off and "benjamini1995" not in off


# ------------------------------------------------------------------------------------------
# every value of every option that changes the analysis is named (issue 18, part 4)


def option_values() -> dict[str, list[str]]:
    """The values to render for each option: the parser's own choices (a value added to the
    parser is covered here without editing the test), or for free-form options their forms."""
    from bids_w2v.bold.confounds import COMPONENTS, PRESETS

    return {
        "--hrf": _choices("hrf_model"),
        "--cv": _choices("cv"),
        "--inner-cv": _choices("inner"),
        "--alpha-search": _choices("alpha_search"),
        "--confounds-strategy": ["none", *PRESETS, *COMPONENTS],
        "--slice-time-ref": ["auto", "0", "0.5"],
    }


def _flags(option: str, value: str) -> list[str]:
    return [option, value, *(["--fir-delays", "1", "2"] if value == "fir" else [])]


def expected_wording(option: str, value: str, config) -> tuple[list[str], list[str]]:
    """What the text must say (and must not say) for ``option value``, from the effective
    configuration; a value nobody described fails here, asking for its wording."""
    enc = config.encoding
    if option == "--hrf":
        if value == "fir":
            return ["finite impulse response", "delayed by 1, 2 scan(s)"], ["Glover", "SPM"]
        name, _, derivative = value.partition("+")
        names = {"glover": "Glover", "spm": "SPM"}
        if name in names and derivative in ("", "derivative"):
            absent = [n for key, n in names.items() if key != name] + ["impulse"]
            return [f"the {names[name]} HRF"] + (["time derivative"] if derivative else []), (
                absent + ([] if derivative else ["time derivative"])
            )
    if option == "--cv" and value in ("kfold", "runs"):
        if value == "kfold":
            return [f"{enc.n_folds} contiguous, unshuffled folds"], ["leave-one-run-out"]
        return ["leave-one-run-out folds"], ["unshuffled folds"]
    if option == "--inner-cv" and value in ("loo", "kfold"):
        loo, kfold = (
            "efficient leave-one-out cross-validation",
            "5-fold contiguous cross-validation",
        )
        return ([loo], [kfold]) if value == "loo" else ([kfold], [loo])
    if option == "--alpha-search" and enc.alpha_search in ("full", "exact"):
        chosen = f"by {'efficient leave-one-out' if enc.inner == 'loo' else '5-fold contiguous'}"
        pruned = "could not be the first minimum were not evaluated"
        if enc.alpha_search == "full":
            return [chosen + " cross-validation on the training data."], [pruned]
        return [chosen, pruned, "the choice of the full grid"], []
    if option == "--confounds-strategy":
        if value == "none":
            return ["was used as preprocessed", "No confound was regressed out"], ["load_confounds"]
        bold_only = "regressed out of the BOLD signal only"
        return [f"strategy ({value})", bold_only], ["used as preprocessed"]
    if option == "--slice-time-ref":
        if value == "auto":
            return ["(i + r) x TR", "StartTime / RepetitionTime"], []
        if float(value) == 0:
            return ["i x TR", "slice-time reference 0"], ["StartTime"]
        return [f"(i + {float(value):g}) x TR"], ["StartTime"]
    pytest.fail(f"the methods text has no expected wording for {option} {value}: add it here")


@pytest.mark.parametrize(
    ("option", "value"), [(o, v) for o, values in option_values().items() for v in values]
)
def test_every_value_of_every_option_is_named(option, value):
    config = _config(*_flags(option, value))
    text = " ".join(methods_boilerplate(config, n_subjects=1, n_runs=1, task="t").split())
    text = text.split("### References")[0]
    present, absent = expected_wording(option, value, config)
    for needle in present:
        assert needle in text, (option, value, needle)
    for needle in absent:
        assert needle not in text, (option, value, needle)
    # always stated: audio normalisation, scan-time reference, trimming, BOLD-only confounds
    for needle in (
        "normalised to zero mean and unit variance over the whole stimulus",
        "Scan i was taken to represent",
        "Dropped from the BOLD, the confounds and the design",
        "non-steady-state volumes",
    ):
        assert needle in text, (option, value, needle)
    assert ("of the BOLD signal only" in text) == config.cleaning.uses_confounds


@pytest.mark.parametrize("option", list(option_values()))
def test_values_that_change_the_analysis_change_the_text(option):
    """Two values of one option give two texts unless their effective configurations agree
    (``--alpha-search auto`` and ``local`` are ``exact``): no value is described as
    another."""
    texts: dict[str, tuple] = {}
    for value in option_values()[option]:
        config = _config(*_flags(option, value))
        effective = (config.design, config.cleaning, config.encoding)
        text = methods_boilerplate(config, n_subjects=1, n_runs=1, task="t")
        for other, (other_effective, other_text) in texts.items():
            assert (text == other_text) == (effective == other_effective), (option, value, other)
        texts[value] = (effective, text)


def test_text_states_the_resolved_scan_times_and_trimming():
    from bids_w2v.features.scan_timing import SliceTimeRef

    refs = [SliceTimeRef(f"run-{i}", 0.5, "sidecar") for i in range(3)]
    refs.append(SliceTimeRef("run-4", 0.0, "none recorded"))
    config = _config("--dummy-scans", "3", "--trim-scans", "2:4", "--dropped-scans", "4",
                     "--high-pass", "128s")  # fmt: skip
    text = methods_boilerplate(config, n_subjects=1, n_runs=4, task="t", slice_time_refs=refs)
    text = " ".join(text.split())
    assert "r = 0 for 1 run(s); r = 0.5 for 3 run(s)" in text
    assert "the first 3 volume(s) of every run" in text
    assert "2 volume(s) at the start and 4 at the end of every run" in text
    assert "removed the first 4 volume(s) of every run" in text and "4 x TR earlier" in text
    assert "high-pass filter at 0.0078125 Hz was applied to the BOLD" in text
    causal = methods_boilerplate(_config("--causal"), n_subjects=1, n_runs=1, task="t")
    assert "unit variance within each window" in " ".join(causal.split())


def test_baselines_and_precomputed_features_are_described():
    config = replace(
        BASE,
        models=(
            ModelSpec(name="mel"),
            ModelSpec(name="phonemes", features_dir=Path("/data/feats")),
        ),
    )
    text = methods_boilerplate(config, n_subjects=1, n_runs=2, task="t")
    assert "log-mel spectrogram baseline: 40 mel bands" in text
    assert "`phonemes` (precomputed features read from `/data/feats`)" in text
    assert "`mel` [@baevski2020]" not in text


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("facebook/wav2vec2-base", "baevski2020"),
        ("openai/whisper-base", "radford2023"),
        ("facebook/w2v-bert-2.0", "chung2021"),
        ("facebook/hubert-base-ls960", "hsu2021"),
        ("microsoft/wavlm-base-plus", "chen2022"),
        ("facebook/data2vec-audio-base", "baevski2022"),
        ("/models/my_own_folder", "baevski2020"),
    ],
)
def test_each_model_family_cites_its_own_paper(name, key):
    from bids_w2v.reports.boilerplate import BIBTEX

    config = replace(BASE, models=(ModelSpec(name=name),))
    text = methods_boilerplate(config, n_subjects=1, n_runs=1, task="t")
    body, refs = text.split("### References")
    assert f"`{name}` [@{key}]" in body
    assert f"- [@{key}]" in refs and "{" + key + "," in BIBTEX
    if key != "baevski2020":
        assert "[@baevski2020]" not in body
