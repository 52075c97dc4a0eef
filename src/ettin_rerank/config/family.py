"""The Ettin reranker family as plain data: each size's shape and published training settings."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class RandomRerankerOptions:
    """What `family.create_random_reranker` decides when a caller names nothing."""

    seed: int = 0  # of the random initialisation
    max_length: int = ETTIN_MAX_LENGTH  # written as the model's max_seq_length


RANDOM_RERANKER = RandomRerankerOptions()
