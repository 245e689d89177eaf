"""--joint on the command line: its spaces resolved against --model, bad values explained."""

from __future__ import annotations

import pytest

from bids_w2v.cli.build import build_config
from bids_w2v.cli.parser import build_parser
from bids_w2v.cli.run import main
from bids_w2v.outputs.record import config_from_toml, config_to_toml


def _config(tmp_path, *extra):
    args = build_parser().parse_args(
        [str(tmp_path), str(tmp_path / "out"), "participant", "--device", "cpu", *extra]
    )
    return build_config(args)


def test_joint_resolved_and_recorded(tmp_path):
    config = _config(
        tmp_path,
        "--model", "facebook/wav2vec2-base", "facebook/wav2vec2-base:random",
        "--joint", "facebook/wav2vec2-base:transformer6", "wav2vec2baseRandom:transformer6",
        "--joint-n-iter", "7", "--joint-seed", "3",
    )  # fmt: skip
    enc = config.encoding
    assert enc.joint == ("wav2vec2base:transformer6", "wav2vec2baseRandom:transformer6")
    assert (enc.joint_n_iter, enc.joint_seed) == (7, 3)
    assert enc.joint_solver == "loo"  # the default
    himalaya = _config(tmp_path, "--joint-solver", "himalaya").encoding
    assert himalaya.joint_solver == "himalaya"
    assert _config(tmp_path).encoding.joint == ()
    assert config_from_toml(config_to_toml(config)).encoding == enc


def test_record_without_joint_solver_reads_as_himalaya(tmp_path):
    """A record written before --joint-solver existed describes maps fitted by himalaya."""
    config = _config(
        tmp_path, "--model", "facebook/wav2vec2-base", "mel",
        "--joint", "facebook/wav2vec2-base:transformer6", "mel",
    )  # fmt: skip
    text = config_to_toml(config)
    assert 'joint_solver = "loo"' in text
    old = "\n".join(line for line in text.splitlines() if not line.startswith("joint_solver"))
    assert config_from_toml(old).encoding.joint_solver == "himalaya"
    assert config_from_toml(text).encoding.joint_solver == "loo"


@pytest.mark.parametrize(
    ("joint", "message"),
    [
        (["mel", "wav2vec2base:transformer1"], "names no model of this run"),
        (["wav2vec2base:transformer1"], "at least two feature spaces"),
    ],
)
def test_bad_joint_is_one_paragraph(tmp_path, capsys, joint, message):
    code = main([
        str(tmp_path), str(tmp_path / "out"), "participant", "--notrack",
        "--model", "facebook/wav2vec2-base", "--joint", *joint,
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and message in err and "--joint" in err
    assert "Traceback" not in err


def test_bad_joint_solver_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _config(tmp_path, "--joint-solver", "kfold")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "--joint-solver" in err and "invalid choice" in err and "'loo'" in err
    assert "Traceback" not in err
