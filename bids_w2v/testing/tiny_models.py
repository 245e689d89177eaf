"""Tiny speech models for tests, saved with save_pretrained like a user's model."""

from __future__ import annotations

#: A wav2vec2 with the base model's 7 conv blocks (narrow) and 2 transformer blocks.
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=10,
)
TINY_LAYERS = [f"conv{i}" for i in range(7)] + ["transformer0", "transformer1"]


def save_tiny_wav2vec2(folder, seed: int = 0, **overrides):
    """Save a tiny wav2vec2 and its feature extractor config to ``folder``; return it."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    Wav2Vec2Model(Wav2Vec2Config(**{**TINY, **overrides})).save_pretrained(
        folder, safe_serialization=True
    )
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


#: Every supported encoder family, as ``config.model_type``.
FAMILIES = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "wav2vec2-conformer",
    "whisper",
    "wav2vec2-bert",
)
#: Context of the tiny Whisper (seconds): 250 encoder positions, 500 log-mel frames.
TINY_WHISPER_CONTEXT_S = 5


def save_tiny(family: str, folder, seed: int = 0):
    """Save a tiny encoder of ``family`` and its feature extractor with save_pretrained.

    Waveform families get the base models' 7 conv blocks (narrow) and 2 blocks of width 32;
    Whisper 2 encoder blocks of width 32 with a 5 s context (its feature extractor's
    ``chunk_length``); w2v-BERT 2 conformer blocks of width 32. Returns ``folder``.
    """
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if family == "whisper":
        config = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_source_positions=TINY_WHISPER_CONTEXT_S * 50,
            max_target_positions=16,
            vocab_size=64,
            pad_token_id=0,
            bos_token_id=0,
            eos_token_id=0,
            decoder_start_token_id=0,
        )
        tf.WhisperModel(config).save_pretrained(folder, safe_serialization=True)
        tf.WhisperFeatureExtractor(chunk_length=TINY_WHISPER_CONTEXT_S).save_pretrained(folder)
        return folder
    if family == "wav2vec2-bert":
        config = tf.Wav2Vec2BertConfig(**small, conv_depthwise_kernel_size=3, output_hidden_size=32)
        tf.Wav2Vec2BertModel(config).save_pretrained(folder, safe_serialization=True)
        tf.SeamlessM4TFeatureExtractor().save_pretrained(folder)
        return folder
    conv = dict(conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    classes = {
        "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model, {}),
        "hubert": (tf.HubertConfig, tf.HubertModel, {}),
        "wavlm": (tf.WavLMConfig, tf.WavLMModel, {}),
        "data2vec-audio": (
            tf.Data2VecAudioConfig,
            tf.Data2VecAudioModel,
            {"conv_pos_kernel_size": 3},
        ),
        "wav2vec2-conformer": (
            tf.Wav2Vec2ConformerConfig,
            tf.Wav2Vec2ConformerModel,
            {"conv_depthwise_kernel_size": 3},
        ),
    }
    config_class, model_class, extra = classes[family]
    config = config_class(**small, **conv, vocab_size=10, **extra)
    model_class(config).save_pretrained(folder, safe_serialization=True)
    tf.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder
