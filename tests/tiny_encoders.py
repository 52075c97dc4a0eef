"""Tiny random encoders of each family, built in code (tests of the encoder contract and its parts)."""

from __future__ import annotations

import torch

from ettin_rerank.modeling.bert import BertConfig, BertModel
from ettin_rerank.modeling.modernbert import (
    FULL_ATTENTION,
    SLIDING_ATTENTION,
    ModernBertConfig,
    ModernBertModel,
)


def modernbert(last_layer: str) -> ModernBertModel:
    config = ModernBertConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        layer_types=[FULL_ATTENTION, SLIDING_ATTENTION, last_layer],
        pad_token_id=0,
    )
    model = ModernBertModel(config)
    model.init_weights(torch.Generator().manual_seed(0))
    return model.eval()


def bert() -> BertModel:
    config = BertConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96
    )
    model = BertModel(config)
    model.init_weights(torch.Generator().manual_seed(0))
    return model.eval()


ENCODERS = {
    "modernbert-global-last": lambda: modernbert(FULL_ATTENTION),
    "modernbert-sliding-last": lambda: modernbert(SLIDING_ATTENTION),
    "bert": bert,
}
