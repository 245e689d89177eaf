"""The Boutiques descriptor describes exactly the command line, and Boutiques can run it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from bids_w2v import __version__
from bids_w2v.cli.boutiques import build_descriptor, descriptor_flag, run_actions
from bids_w2v.cli.parser import build_parser

bosh = pytest.importorskip("boutiques").bosh

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "boutiques.json"
REGENERATE = "regenerate it: python -m bids_w2v.cli.boutiques > boutiques.json"


def _committed() -> dict:
    return json.loads(DESCRIPTOR.read_text())


def test_committed_descriptor_is_valid():
    bosh(["validate", str(DESCRIPTOR)])  # raises DescriptorValidationError if invalid
    assert _committed()["tool-version"] == __version__


def test_generated_descriptor_is_valid(tmp_path):
    path = tmp_path / "descriptor.json"
    path.write_text(json.dumps(build_descriptor()))
    bosh(["validate", str(path)])


def test_descriptor_flags_are_exactly_the_parsers():
    """One input per argparse action (help/version aside), with one of its option strings."""
    parser = build_parser()
    inputs = _committed()["inputs"]
    flags = {item["command-line-flag"] for item in inputs if "command-line-flag" in item}
    positional = [item["id"] for item in inputs if "command-line-flag" not in item]
    expected_flags = {descriptor_flag(a) for a in run_actions(parser) if a.option_strings}
    expected_positional = [a.dest for a in run_actions(parser) if not a.option_strings]
    missing, extra = sorted(expected_flags - flags), sorted(flags - expected_flags)
    assert not missing and not extra, f"missing {missing}, not in the parser {extra}; {REGENERATE}"
    assert positional == expected_positional
    every_option = {opt for action in parser._actions for opt in action.option_strings}
    assert flags <= every_option


def test_committed_descriptor_is_up_to_date():
    assert _committed() == json.loads(json.dumps(build_descriptor())), REGENERATE


def test_every_value_key_is_in_the_command_line():
    descriptor = build_descriptor()
    template = descriptor["command-line"].split()
    assert template[0] == "bids-w2v"
    assert [item["value-key"] for item in descriptor["inputs"]] == template[1:]


def _simulate(tmp_path: Path, invocation: dict) -> list[str]:
    """The command that ``bosh exec simulate`` builds from ``invocation``, as argv."""
    descriptor = tmp_path / "descriptor.json"
    descriptor.write_text(json.dumps(build_descriptor()))
    inv = tmp_path / "invocation.json"
    inv.write_text(json.dumps(invocation))
    bosh(["invocation", str(descriptor), "-i", str(inv)])  # validates the invocation
    out = bosh(["exec", "simulate", str(descriptor), "-i", str(inv)])
    argv = shlex.split(out.shell_command)
    assert argv[0] == "bids-w2v"
    return argv[1:]


@pytest.mark.parametrize(
    ("invocation", "expected"),
    [
        (
            {
                "bids_dir": "/data/ds",
                "output_dir": "/out",
                "analysis_level": "participant",
                "participant_label": ["01", "02"],
                "derivatives": "fmriprep=/data/fmriprep",
                "random_init": True,
                "confounds_strategy": ["motion", "high_pass"],
                "window_s": 8.5,
                "nprocs": 2,
                "work_dir": "/scratch/work",
            },
            {
                "participant_label": ["01", "02"],
                "derivatives": [("fmriprep", Path("/data/fmriprep"))],
                "random_init": True,
                "confounds_strategy": ["motion", "high_pass"],
                "window_s": 8.5,
                "nprocs": 2,
                "work_dir": Path("/scratch/work"),
            },
        ),
        (
            {"bids_dir": "/data/ds", "output_dir": "/out", "analysis_level": "group"},
            {},
        ),
    ],
    ids=["participant", "group"],
)
def test_simulated_invocation_parses_to_the_same_values(tmp_path, invocation, expected):
    """Boutiques' command (defaults filled in) means to argparse what the invocation says."""
    parser = build_parser()
    args = parser.parse_args(_simulate(tmp_path, invocation))
    assert args.bids_dir == Path(invocation["bids_dir"])
    assert args.output_dir == Path(invocation["output_dir"])
    assert args.analysis_level == invocation["analysis_level"]
    defaults = parser.parse_args(["/data/ds", "/out", invocation["analysis_level"]])
    for dest, default in vars(defaults).items():
        if dest in ("bids_dir", "output_dir", "analysis_level"):
            continue
        assert getattr(args, dest) == expected.get(dest, default), dest


def test_default_on_switch_is_described_by_its_negative_form(tmp_path):
    """A BooleanOptionalAction on by default is a Flag that turns it off."""
    parser = build_parser()
    switches = [
        a
        for a in run_actions(parser)
        if a.option_strings and a.default is True and any("--no-" in o for o in a.option_strings)
    ]
    if not switches:
        pytest.skip("no on-by-default switch in the parser")
    action = switches[0]
    invocation = {"bids_dir": "/d", "output_dir": "/o", "analysis_level": "participant"}
    invocation[f"no_{action.dest}"] = True
    args = parser.parse_args(_simulate(tmp_path, invocation))
    assert getattr(args, action.dest) is False
