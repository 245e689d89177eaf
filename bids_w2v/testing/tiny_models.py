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
