"""Feature spaces of --joint (bids_w2v.encoding.joint)."""

from __future__ import annotations

import pytest

from bids_w2v.encoding.joint import (
    JointSpace,
    from_config,
    joint_desc,
    parse_joint,
    pick_layer,
    space_desc,
)

MODELS = {"facebook/wav2vec2-base": "wav2vec2base", "mel": "mel"}


def test_specs_by_model_value_or_label():
    spaces = parse_joint(["facebook/wav2vec2-base:transformer6", "mel"], MODELS)
    assert spaces == [JointSpace("wav2vec2base", "transformer6"), JointSpace("mel", None)]
    assert [str(s) for s in spaces] == ["wav2vec2base:transformer6", "mel"]
    assert parse_joint(["wav2vec2base:transformer6", "wav2vec2base:conv1"], MODELS)[1].layer == (
        "conv1"
    )
    assert from_config([str(s) for s in spaces]) == spaces


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["whisper:encoder3", "mel"], "names no model of this run"),
        (["mel"], "at least two feature spaces"),
        (["mel", "mel"], "twice"),
        (["wav2vec2base:", "mel"], "names no model"),
    ],
)
def test_bad_specs_are_explained(values, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_joint(values, MODELS)
    assert "--joint" in str(info.value)


def test_pick_layer():
    assert pick_layer(JointSpace("mel", None), ["mel"]) == "mel"
    assert pick_layer(JointSpace("w", "transformer1"), ["conv1", "transformer1"]) == "transformer1"
    with pytest.raises(ValueError, match="name one as w:LAYER"):
        pick_layer(JointSpace("w", None), ["conv1", "transformer1"])
    with pytest.raises(ValueError, match="no layer 'transformer9'.*conv1, transformer1"):
        pick_layer(JointSpace("w", "transformer9"), ["conv1", "transformer1"])


def test_desc_labels():
    assert space_desc("wav2vec2base", "transformer6") == "wav2vec2baseTransformer6"
    assert space_desc("mel", "mel") == "mel"
    assert joint_desc(["wav2vec2baseTransformer6", "mel"]) == "jointWav2vec2baseTransformer6Mel"
