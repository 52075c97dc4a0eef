"""The Ettin reranker family as configs, and random-weight rerankers of any size.

Random models have the speed of trained ones, so they serve tests, benchmarks and as
the starting point of distillation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .modeling.crossencoder import CrossEncoderModel
from .modeling.heads import ModularHead
from .modeling.loading import save_modular
from .modeling.modernbert import ModernBertConfig, ModernBertModel

ETTIN_MAX_LENGTH = 7999  # the released rerankers' max_seq_length


@dataclass(frozen=True)
class EttinSize:
    name: str
    reranker_id: str  # the published checkpoint on the Hugging Face Hub
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int  # GeGLU half-width
    learning_rate: float  # the published distillation learning rate
    global_batch_size: int  # the published distillation batch size

    def encoder_config(self, vocab_size: int = 50368) -> ModernBertConfig:
        return ModernBertConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
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


SIZES: dict[str, EttinSize] = {
    size.name: size
    for size in (
        # `tiny` is not published: two global and two local layers, for fast tests.
        EttinSize("tiny", "", 4, 128, 2, 192, 2.4e-4, 64),
        EttinSize("17m", "cross-encoder/ettin-reranker-17m-v1", 7, 256, 4, 384, 2.4e-4, 1024),
        EttinSize("32m", "cross-encoder/ettin-reranker-32m-v1", 10, 384, 6, 576, 1.2e-4, 512),
        EttinSize("68m", "cross-encoder/ettin-reranker-68m-v1", 19, 512, 8, 768, 3e-5, 256),
        EttinSize("150m", "cross-encoder/ettin-reranker-150m-v1", 22, 768, 12, 1152, 1.5e-5, 192),
        EttinSize("400m", "cross-encoder/ettin-reranker-400m-v1", 28, 1024, 16, 2624, 7e-6, 256),
        EttinSize("1b", "cross-encoder/ettin-reranker-1b-v1", 28, 1792, 28, 3840, 3e-6, 512),
    )
}


def get_size(name: str) -> EttinSize:
    try:
        return SIZES[name]
    except KeyError:
        raise ValueError(f"unknown Ettin size {name!r}; choose one of {list(SIZES)}") from None


def build_random_model(size: str, seed: int = 0, vocab_size: int = 50368) -> CrossEncoderModel:
    """A randomly initialised ModernBERT encoder with the Ettin head."""
    config = get_size(size).encoder_config(vocab_size)
    generator = torch.Generator().manual_seed(seed)
    encoder = ModernBertModel(config)
    encoder.init_weights(generator)
    head = ModularHead.ettin(config.hidden_size, generator)
    return CrossEncoderModel(encoder, head).eval()


def create_random_reranker(
    size: str,
    tokenizer_dir: str | Path,
    output_dir: str | Path,
    seed: int = 0,
    max_length: int = ETTIN_MAX_LENGTH,
) -> Path:
    """Write a random-weight reranker of `size` in the Ettin modular layout; returns `output_dir`."""
    tokenizer_dir = Path(tokenizer_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"missing file {tokenizer_dir / 'tokenizer.json'}: pass a tokenizer directory"
        )
    model = build_random_model(size, seed=seed)
    return save_modular(model, tokenizer_dir, output_dir, max_length=max_length)
