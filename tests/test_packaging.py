"""The Boutiques descriptor and the container recipes agree with the command line."""

import json
from pathlib import Path

from bids_w2v import __version__
from bids_w2v.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_boutiques_flags_exist():
    descriptor = json.loads((ROOT / "boutiques.json").read_text())
    assert descriptor["tool-version"] == __version__
    flags = {opt for action in build_parser()._actions for opt in action.option_strings}
    template = descriptor["command-line"]
    for item in descriptor["inputs"]:
        assert item["value-key"] in template
        if "command-line-flag" in item:
            assert item["command-line-flag"] in flags, item["id"]


def test_dockerfile_pins_torch_and_runs_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in text
    assert "USER bidsw2v" in text and 'ENTRYPOINT ["bids-w2v"]' in text
