"""Tests of bids_w2v.features.models and .layers with tiny models saved to disk (no network)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    Data2VecAudioConfig,
    HubertConfig,
    HubertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Model,
    WavLMConfig,
)

from bids_w2v.errors import InputError, ModelError
from bids_w2v.features import (
    LoadedModel,
    available_layers,
    layer_index,
    load_model,
    model_label,
    parse_layers,
    spec_label,
)
from bids_w2v.testing.tiny_models import TINY, TINY_LAYERS


def _save(folder, model, sampling_rate=16000, do_normalize=True):
    model.save_pretrained(folder, safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        sampling_rate=sampling_rate, do_normalize=do_normalize
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(123)
    return _save(
        tmp_path_factory.mktemp("models") / "tiny-w2v", Wav2Vec2Model(Wav2Vec2Config(**TINY))
    )


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_load_local_folder(tiny_dir):
    loaded = load_model(str(tiny_dir))
    assert isinstance(loaded, LoadedModel)
    assert type(loaded.model).__name__ == "Wav2Vec2Model"
    assert not loaded.model.training
    assert (loaded.label, loaded.random_init, loaded.seed) == ("tinyw2v", False, None)
    assert (loaded.sampling_rate, loaded.do_normalize, loaded.model_type) == (
        16000,
        True,
        "wav2vec2",
    )
    assert len(loaded.weights_sha256) == 64
    reference = Wav2Vec2Model.from_pretrained(tiny_dir)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    assert load_model(tiny_dir).weights_sha256 == loaded.weights_sha256


def test_preprocessor_config_is_read(tmp_path):
    folder = _save(tmp_path / "m", Wav2Vec2Model(Wav2Vec2Config(**TINY)), 8000, False)
    loaded = load_model(folder)
    assert (loaded.sampling_rate, loaded.do_normalize) == (8000, False)


def test_half_precision_checkpoint_loads_as_float32(tmp_path, monkeypatch):
    folder = _save(tmp_path / "half", Wav2Vec2Model(Wav2Vec2Config(**TINY)).half())
    monkeypatch.chdir(folder)
    loaded = load_model(".")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert loaded.label == "half"


def test_pretraining_checkpoint_loads_as_encoder(tmp_path):
    torch.manual_seed(1)
    pretraining = Wav2Vec2ForPreTraining(
        Wav2Vec2Config(**TINY, codevector_dim=8, proj_codevector_dim=8)
    )
    folder = _save(tmp_path / "pre", pretraining)
    loaded = load_model(folder)
    expected = pretraining.wav2vec2.state_dict()
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, expected[key])


def test_random_init_seeds(tiny_dir):
    a = load_model(tiny_dir, random_init=True, seed=0)
    b = load_model(tiny_dir, random_init=True, seed=0)
    c = load_model(tiny_dir, random_init=True, seed=1)
    trained = load_model(tiny_dir)
    assert a.weights_sha256 == b.weights_sha256
    assert len({a.weights_sha256, c.weights_sha256, trained.weights_sha256}) == 3
    assert (a.label, a.random_init, a.seed) == ("tinyw2vRandom", True, 0)


def test_random_wav2vec2_base_is_offline(empty_hub):
    loaded = load_model("facebook/wav2vec2-base", random_init=True, seed=3)
    config = loaded.model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        768,
        12,
        12,
    )
    assert (config.intermediate_size, config.feat_extract_norm, config.conv_bias) == (
        3072,
        "group",
        False,
    )
    assert list(config.conv_kernel) == [10, 3, 3, 3, 3, 2, 2]
    assert list(config.conv_stride) == [5, 2, 2, 2, 2, 2, 2]
    n_params = sum(p.numel() for p in loaded.model.parameters())
    assert 94.0e6 < n_params < 95.0e6
    assert loaded.label == "wav2vec2baseRandom"
    assert (loaded.sampling_rate, loaded.do_normalize, loaded.seed) == (16000, True, 3)
    assert len(available_layers(loaded)) == 19
    assert layer_index("transformer0", available_layers(loaded)) == 7
    alias = load_model("wav2vec2-base", random_init=True, seed=3)
    assert alias.weights_sha256 == loaded.weights_sha256
    assert alias.label == "wav2vec2baseRandom"


def test_pickle_only_folder_is_refused(tmp_path, tiny_dir):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_dir / "config.json", folder / "config.json")
    torch.save(Wav2Vec2Model(Wav2Vec2Config(**TINY)).state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pytorch_model.bin") as info:
        load_model(folder)
    assert "safetensors" in str(info.value) and str(folder) in str(info.value)


def test_pickle_opt_in_reads_tensors_only(tmp_path, tiny_dir):
    """--allow-pickle reads a plain state dict with torch's weights-only loader; a pickle that
    would run code is still refused, and the code never runs."""
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_dir / "config.json", folder / "config.json")
    reference = load_model(tiny_dir)
    torch.save(reference.model.state_dict(), folder / "pytorch_model.bin")
    loaded = load_model(folder, allow_pickle=True)
    assert loaded.weights_sha256 == reference.weights_sha256

    marker = tmp_path / "code_ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    hostile = tmp_path / "hostile"
    hostile.mkdir()
    shutil.copy(tiny_dir / "config.json", hostile / "config.json")
    state = dict(reference.model.state_dict())
    state["evil"] = Evil()
    torch.save(state, hostile / "pytorch_model.bin")
    with pytest.raises(ModelError, match="could not be loaded"):
        load_model(hostile, allow_pickle=True)
    assert not marker.exists(), "a pickle must never run code"


def test_custom_code_is_refused(tmp_path, tiny_dir):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    for random_init in (False, True):
        with pytest.raises(ModelError, match="auto_map"):
            load_model(folder, random_init=random_init)


def test_incomplete_weights_are_refused(tmp_path, tiny_dir):
    folder = tmp_path / "partial"
    folder.mkdir()
    shutil.copy(tiny_dir / "config.json", folder / "config.json")
    save_file({"unrelated.weight": torch.zeros(2)}, folder / "model.safetensors")
    with pytest.raises(ModelError, match="missing"):
        load_model(folder)


def test_missing_things(tmp_path, empty_hub):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    (tmp_path / "no-config").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        load_model(tmp_path / "no-config")
    start = time.monotonic()
    with pytest.raises(ModelError, match="huggingface-cli download") as info:
        load_model("bids-w2v-tests/not-cached-model")
    assert "HF_HOME" in str(info.value) and "bids-w2v-tests/not-cached-model" in str(info.value)
    with pytest.raises(ModelError, match="huggingface-cli download"):
        load_model("facebook/wav2vec2-base")  # trained weights are never shipped
    assert time.monotonic() - start < 20


def test_model_label():
    assert model_label("facebook/wav2vec2-base") == "wav2vec2base"
    assert model_label("/data/models/my_model.v2/", True) == "mymodelv2Random"
    assert model_label("---") == "model"


@pytest.mark.parametrize(
    "config_class", [Wav2Vec2Config, HubertConfig, WavLMConfig, Data2VecAudioConfig]
)
def test_layer_names_across_families(tmp_path, config_class):
    from transformers import AutoModel

    config = config_class(**TINY)
    folder = _save(tmp_path / config.model_type, AutoModel.from_config(config))
    loaded = load_model(folder)
    assert loaded.model_type == config.model_type
    assert available_layers(loaded.model) == TINY_LAYERS
    assert available_layers(loaded) == TINY_LAYERS
    # the hooks give every layer at the model frame rate, with the layer's own width
    from bids_w2v.features import extract_features

    audio = np.random.default_rng(0).normal(size=16000 * 3).astype(np.float32)
    feats = extract_features(loaded, audio, layers=TINY_LAYERS, window_s=2.0, stride_s=1.0)
    assert list(feats.layers) == TINY_LAYERS and feats.frame_rate == 50.0
    for name, values in feats.layers.items():
        width = TINY["conv_dim"][0] if name.startswith("conv") else TINY["hidden_size"]
        assert values.shape == (149, width) and np.isfinite(values).all(), name
    with torch.inference_mode():  # the last block is the model's output (full pass)
        x = torch.tensor((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7))[None]
        last = loaded.model(x).last_hidden_state[0].numpy()
    single = extract_features(loaded, audio, layers=["transformer1"], window_s=None)
    np.testing.assert_allclose(single.layers["transformer1"], last, atol=1e-4)


def test_hubert_random_init_from_folder(tmp_path):
    folder = _save(tmp_path / "hubert", HubertModel(HubertConfig(**TINY)))
    loaded = load_model(folder, random_init=True, seed=5)
    assert type(loaded.model).__name__ == "HubertModel" and loaded.label == "hubertRandom"


BASE = [f"conv{i}" for i in range(7)] + [f"transformer{i}" for i in range(12)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, BASE),
        ("all", BASE),
        ("transformer3", ["transformer3"]),
        ("transformer0-transformer2", ["transformer0", "transformer1", "transformer2"]),
        ("conv0-conv6", BASE[:7]),
        ("0-6", BASE[:7]),
        ("7", ["transformer0"]),
        ("conv", BASE[:7]),
        ("transformer", BASE[7:]),
        ("transformer5, conv1,transformer5", ["conv1", "transformer5"]),
        (["transformer11", "conv0-conv1"], ["conv0", "conv1", "transformer11"]),
        ("conv6-transformer1", ["conv6", "transformer0", "transformer1"]),
    ],
)
def test_parse_layers(spec, expected):
    assert parse_layers(spec, BASE) == expected


@pytest.mark.parametrize(
    "spec", ["transformer12", "conv7", "19", "layer3", "transformer2-transformer99", "", " , "]
)
def test_parse_layers_errors(spec):
    with pytest.raises(InputError) as info:
        parse_layers(spec, BASE)
    assert "conv0-conv6" in str(info.value) and "transformer0-transformer11" in str(info.value)


def test_parse_layers_backwards_range():
    with pytest.raises(InputError, match="backwards"):
        parse_layers("transformer5-transformer1", BASE)


def test_layer_index():
    assert [layer_index(n, BASE) for n in ("conv0", "conv6", "transformer0", "transformer11")] == [
        0,
        6,
        7,
        18,
    ]
    with pytest.raises(InputError, match="transformer12"):
        layer_index("transformer12", BASE)


#: Architecture fields of the public facebook/wav2vec2-base and facebook/wav2vec2-large configs.
PUBLIC = {
    "wav2vec2-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                          intermediate_size=3072),
    "wav2vec2-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096),
}  # fmt: skip
COMMON = dict(
    conv_dim=[512] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False,
    feat_extract_norm="group",
    do_stable_layer_norm=False,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    model_type="wav2vec2",
)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_shipped_configs(name):
    """The shipped configs match the public ones; the architectures build with the expected
    layers (on the meta device: no weights are allocated)."""
    from importlib import resources

    from transformers import AutoModel

    from bids_w2v.features.model_folder import build_config
    from bids_w2v.features.models import SHIPPED_CONFIGS

    assert SHIPPED_CONFIGS[name] == SHIPPED_CONFIGS[f"facebook/{name}"] == f"{name}.json"
    text = (resources.files("bids_w2v") / "data" / "models" / f"{name}.json").read_text()
    config_dict = json.loads(text)
    for key, value in {**COMMON, **PUBLIC[name]}.items():
        assert config_dict[key] == value, key
    with torch.device("meta"):
        model = AutoModel.from_config(build_config(config_dict, name))
    n_blocks = PUBLIC[name]["num_hidden_layers"]
    layers = available_layers(model)
    assert layers == [f"conv{i}" for i in range(7)] + [f"transformer{i}" for i in range(n_blocks)]
    assert len(layers) == {"wav2vec2-base": 19, "wav2vec2-large": 31}[name]
    n_params = sum(p.numel() for p in model.parameters())
    assert {"wav2vec2-base": 94e6, "wav2vec2-large": 315e6}[name] < n_params
    assert n_params < {"wav2vec2-base": 95e6, "wav2vec2-large": 318e6}[name]
    assert spec_label(name, True) == name.replace("-", "") + "Random"
