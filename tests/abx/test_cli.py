"""``bids-w2v-abx`` end to end on espeak-ng minimal pairs, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from bids_w2v.cli.abx import build_parser, main


@pytest.fixture(scope="module")
def abx_run(small_minimal_pairs, tiny_model, tmp_path_factory):
    item_file, audio_dir = small_minimal_pairs
    out = tmp_path_factory.mktemp("abx_out")
    human = out.parent / "human.tsv"
    human.write_text("phone_a\tphone_b\taccuracy\tnative\nae\tih\t0.8\t1\nih\tae\t0.7\t1\n")
    argv = [str(item_file), str(audio_dir), str(out), "--model", "logmel",
            f"{tiny_model}:random", "--layers", "conv1,transformer1",
            "--human-results", str(human), "--n-boot", "50"]  # fmt: skip
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_outputs(abx_run):
    scores = pd.read_csv(abx_run / "abx_scores.tsv", sep="\t")
    assert (
        set(scores["model"]) == {"logmel", "tinywav2vec2Random"} or len(set(scores["model"])) == 2
    )
    assert set(scores["speaker_mode"]) == {"within", "across"}
    assert set(scores["distance"]) == {"cosine", "angular"}
    assert len(scores) == 3 * 2 * 2  # (logmel + 2 layers) x modes x distances
    random_label = next(m for m in scores["model"] if m != "logmel")
    assert random_label.endswith("Random")
    for layer in ("conv1", "transformer1"):
        stem = abx_run / "abx" / f"model-{random_label}_layer-{layer}_abx"
        table = pd.read_csv(stem.with_suffix(".tsv"), sep="\t")
        sidecar = json.loads(stem.with_suffix(".json").read_text())
        assert sidecar["Layer"] == layer and sidecar["Model"]["random_init"] is True
        assert sidecar["settings"]["model_input"] == "file"
        within = table[(table.speaker_mode == "within") & (table.distance == "cosine")]
        # the summary is the mean over contrasts of the per-contrast table
        row = scores[(scores.layer == layer) & (scores.speaker_mode == "within")
                     & (scores.distance == "cosine")]  # fmt: skip
        assert row["error"].iloc[0] == pytest.approx(within["error"].mean())
        assert sidecar["ABXError"]["within"]["cosine"] == pytest.approx(row["error"].iloc[0])
    human = pd.read_csv(abx_run / "abx_human.tsv", sep="\t")
    assert len(human) == len(scores) and (human["n_contrasts"] == 1).all()
    assert (abx_run / "abx_error_by_layer.png").read_bytes()[:4] == b"\x89PNG"
    report = (abx_run / "abx_report.html").read_text()
    assert "data:image/png;base64" in report and "DTW-aligned" in report
    methods = json.loads((abx_run / "abx_scores.json").read_text())["Methods"]
    assert "whole audio file" in methods


def test_defaults_come_from_the_settings():
    from bids_w2v.abx.run import AbxSettings

    args = build_parser().parse_args(["i", "a", "o", "--model", "m"])
    settings = AbxSettings()
    for name in ("window_s", "stride_s", "batch_size", "dtype", "model_input", "seed"):
        assert getattr(args, name) == getattr(settings, name)
    assert tuple(args.modes) == settings.modes and tuple(args.distances) == settings.distances


def _run(*argv):
    return subprocess.run(
        [sys.executable, "-m", "bids_w2v.cli.abx", *map(str, argv)],
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_bad_inputs_exit_without_traceback(small_minimal_pairs, tmp_path):
    item_file, audio_dir = small_minimal_pairs
    bad_items = tmp_path / "bad.item"
    bad_items.write_text("#header\nf1 0.1 0.2 ae b t\n")
    cases = [
        ((bad_items, audio_dir, tmp_path / "o1", "--model", "logmel"), 2, "has 6 fields"),
        ((item_file, tmp_path, tmp_path / "o2", "--model", "logmel"), 2, "have no audio"),
        (
            (item_file, audio_dir, tmp_path / "o3", "--model", tmp_path / "nope"),
            3,
            "does not exist",
        ),
    ]
    for argv, code, message in cases:
        result = _run(*argv)
        assert result.returncode == code, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.startswith("bids-w2v-abx: error:")


def test_unknown_layer(small_minimal_pairs, tiny_model, tmp_path, capsys):
    item_file, audio_dir = small_minimal_pairs
    code = main([str(item_file), str(audio_dir), str(tmp_path / "o"), "--model",
                 str(tiny_model), "--layers", "transformer9"])  # fmt: skip
    assert code == 2 and "Unknown layer 'transformer9'" in capsys.readouterr().err


def test_bad_item_file_in_process(tmp_path, capsys):
    bad_items = tmp_path / "bad.item"
    bad_items.write_text("#header\nf1 0.3 0.2 ae b t s\n")
    assert main([str(bad_items), str(tmp_path), str(tmp_path / "o"), "--model", "logmel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bids-w2v-abx: error: Line 2") and "0 <= onset < offset" in err
