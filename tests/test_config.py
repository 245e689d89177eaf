"""The configuration is the only path: parser destinations are its fields, defaults are its
own, ``auto`` is resolved once, and the TOML record reads back to the same configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bids_w2v.cli.build import build_config
from bids_w2v.cli.parser import build_parser
from bids_w2v.config import (
    SECTIONS,
    CleaningSettings,
    EncodingSettings,
    ModelSpec,
    RunConfig,
    default,
    node_inputs,
)
from bids_w2v.errors import InputError
from bids_w2v.outputs.record import config_from_toml, config_to_toml, recorded_config

# options that are read to resolve several fields at once (build_config says how)
DERIVED = {"model", "random_init", "use_plugin", "trim_scans", "notrack", "device", "space"}


def _fields() -> set[str]:
    names = {f.name for f in dataclasses.fields(RunConfig)}
    names |= {f.name for f in dataclasses.fields(ModelSpec)}
    for cls in SECTIONS.values():
        names |= {f.name for f in dataclasses.fields(cls)}
    return names


def _actions():
    return [a for a in build_parser()._actions if a.dest not in ("help", "version")]


def test_every_parser_destination_is_a_config_field():
    fields = _fields()
    orphans = [a.dest for a in _actions() if a.dest not in fields | DERIVED]
    assert not orphans, f"parser destinations that are no configuration field: {orphans}"


def test_parser_defaults_are_the_configs():
    """A default is written once, in the dataclasses; the parser shows the same value."""
    owners = {f.name: RunConfig for f in dataclasses.fields(RunConfig)}
    owners.update({f.name: ModelSpec for f in dataclasses.fields(ModelSpec)})
    for cls in SECTIONS.values():
        owners.update({f.name: cls for f in dataclasses.fields(cls)})
    checked = 0
    for action in _actions():
        if action.dest in DERIVED or action.default in (None, [], ()):
            continue
        if action.dest in ("work_dir",):
            continue
        assert action.default == default(owners[action.dest], action.dest), action.dest
        checked += 1
    assert checked >= 15


def test_default_command_line_gives_the_default_config(tmp_path):
    args = build_parser().parse_args([str(tmp_path), str(tmp_path / "out"), "group"])
    config = build_config(args)
    for name, cls in SECTIONS.items():
        if name in ("group",):
            continue
        assert getattr(config, name) == cls(), name
    assert config.models == (ModelSpec(),)


def test_alpha_search_auto_is_resolved_once_in_the_config():
    assert EncodingSettings(alpha_search="auto").alpha_search == "exact"
    assert EncodingSettings(alpha_search="local", inner="kfold").alpha_search == "exact"
    assert EncodingSettings().alpha_search == "exact"


def test_nodes_are_built_from_settings():
    from bids_w2v.interfaces.encoding import FitEncoding

    settings = EncodingSettings(n_folds=3, gap=2, features_pca=4)
    kwargs = node_inputs(FitEncoding, settings, num_threads=2)
    node = FitEncoding(**kwargs)
    assert node.inputs.n_folds == 3 and node.inputs.gap == 2 and node.inputs.features_pca == 4
    assert node.inputs.alphas == list(settings.alphas) and node.inputs.num_threads == 2


def test_toml_record_reads_back(tmp_path):
    flags = ["--model", "a", "b:random", "--hrf", "fir", "--fir-delays", "1", "2",
             "--confounds-strategy", "simple", "--trim-scans", "3:2", "--cv", "runs",
             "--alpha-search", "auto", "--features-pca", "5", "--mask", "m.nii.gz",
             "--high-pass", "128s", "--window", "8", "--seed", "3"]  # fmt: skip
    args = build_parser().parse_args([str(tmp_path), str(tmp_path / "o"), "group", *flags])
    config = build_config(args)
    assert config_from_toml(config_to_toml(config)) == config
    assert config.design.fir_delays == (1, 2) and config.cleaning.trim_scans == (3, 2)
    assert config.inputs.mask == Path("m.nii.gz").absolute()


def _record(out: Path, stamp: str, **changes) -> None:
    config = dataclasses.replace(
        RunConfig(bids_dir=Path("/d"), output_dir=out, analysis_level="participant"), **changes
    )
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "logs" / f"config-participant-{stamp}.toml").write_text(config_to_toml(config))


def test_recorded_config_is_the_participant_levels(tmp_path):
    assert recorded_config(tmp_path) is None
    _record(tmp_path, "20260101-000000-1", participant_label=("01",), nprocs=4)
    _record(tmp_path, "20260101-000001-2", participant_label=("02",))  # another job: fine
    _record(tmp_path, "20260101-000001-4", models=(ModelSpec(random_init=True),))  # a model
    _record(tmp_path, "20260101-000001-5", space="fsaverage5", cleaning=CleaningSettings(("none",)))
    found = recorded_config(tmp_path, space="MNI152NLin2009cAsym")
    assert found is not None and found.models == (ModelSpec(random_init=True),)
    assert recorded_config(tmp_path, space="fsaverage5").cleaning.confounds_strategy == ("none",)
    _record(tmp_path, "20260101-000002-3", encoding=EncodingSettings(cv="runs"))
    with pytest.raises(InputError, match="different 'encoding' settings"):
        recorded_config(tmp_path, space="MNI152NLin2009cAsym")
