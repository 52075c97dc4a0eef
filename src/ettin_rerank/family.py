"""The Ettin reranker family as models, and random-weight rerankers of any size (the sizes
themselves are plain data in `config/family.py`).

Random models have the speed of trained ones, so they serve tests, benchmarks and as
the starting point of distillation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config.family import RANDOM_RERANKER, SIZES, EttinSize
from .modeling.crossencoder import CrossEncoderModel
from .modeling.heads import ModularHead
from .modeling.loading import save_modular
from .modeling.modernbert import ModernBertConfig, ModernBertModel


def encoder_config(size: EttinSize, vocab_size: int = 50368) -> ModernBertConfig:
    """The ModernBERT encoder of an Ettin size."""
    return ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        hidden_activation="gelu",
        max_position_embeddings=8192,
        norm_eps=1e-5,
        norm_bias=False,
        attention_bias=False,
        mlp_bias=False,
        global_rope_theta=160_000.0,
        local_rope_theta=160_000.0,
        local_attention=128,
    )


def get_size(name: str) -> EttinSize:
    try:
        return SIZES[name]
    except KeyError:
        raise ValueError(f"unknown Ettin size {name!r}; choose one of {list(SIZES)}") from None


def build_random_model(size: str, seed: int = 0, vocab_size: int = 50368) -> CrossEncoderModel:
    """A randomly initialised ModernBERT encoder with the Ettin head."""
    config = encoder_config(get_size(size), vocab_size)
    generator = torch.Generator().manual_seed(seed)
    encoder = ModernBertModel(config)
    encoder.init_weights(generator)
    head = ModularHead.ettin(config.hidden_size, generator)
    return CrossEncoderModel(encoder, head).eval()


def create_random_reranker(
    size: str,
    tokenizer_dir: str | Path,
    output_dir: str | Path,
    seed: int = RANDOM_RERANKER.seed,
    max_length: int = RANDOM_RERANKER.max_length,
) -> Path:
    """Write a random-weight reranker of `size` in the Ettin modular layout; returns `output_dir`."""
    tokenizer_dir = Path(tokenizer_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"missing file {tokenizer_dir / 'tokenizer.json'}: pass a tokenizer directory"
        )
    model = build_random_model(size, seed=seed)
    return save_modular(model, tokenizer_dir, output_dir, max_length=max_length)
