"""Under a CLS-pooling head the last layer runs for first tokens only: same rows, same scores."""

from __future__ import annotations

import inspect

import pytest
import torch

from ettin_rerank.modeling.attention import Packing
from ettin_rerank.modeling.bert import BertConfig, BertModel
from ettin_rerank.modeling.crossencoder import CrossEncoderModel
from ettin_rerank.modeling.encoder import Encoder, PackedInputs
from ettin_rerank.modeling.heads import ModularHead
from ettin_rerank.modeling.modernbert import (
    FULL_ATTENTION,
    SLIDING_ATTENTION,
    ModernBertConfig,
    ModernBertModel,
)

LENGTHS = [300, 1, 140, 64, 2, 129, 70]


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


@pytest.mark.parametrize("lengths", [LENGTHS, [300], [1]], ids=lambda x: f"{len(x)}seqs")
@pytest.mark.parametrize("name", list(ENCODERS))
@torch.inference_mode()
def test_first_tokens_only_equals_the_full_output_rows(name, lengths):
    encoder = ENCODERS[name]()
    torch.manual_seed(1)
    packing = Packing.from_lengths(lengths)
    input_ids = torch.randint(1, 100, (packing.total_tokens,))
    token_type_ids = (packing.position_ids > 5).long()
    inputs = PackedInputs(input_ids, token_type_ids, packing)
    full = encoder(inputs)  # (total_tokens, hidden)
    first = encoder(inputs, first_tokens_only=True)  # (batch, hidden)
    torch.testing.assert_close(first, full[packing.first_tokens()], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@torch.inference_mode()
def test_crossencoder_scores_equal_the_eager_reference(pooling):
    encoder = modernbert(FULL_ATTENTION)
    head = ModularHead.ettin(64, torch.Generator().manual_seed(2))
    head.pooling_mode = pooling
    model = CrossEncoderModel(encoder, head).eval()
    torch.manual_seed(3)
    packing = Packing.from_lengths(LENGTHS)
    input_ids = torch.randint(1, 100, (packing.total_tokens,))
    inputs = PackedInputs(input_ids, None, packing)
    packed = model(inputs)
    torch.testing.assert_close(packed, model(inputs, attention="eager"), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_each_family_meets_the_encoder_contract(name):
    """The `Encoder` contract at run time (mypy checks it statically): each family's forward takes
    exactly the contract's parameters, and the attributes it states are there."""
    encoder = ENCODERS[name]()
    assert inspect.signature(type(encoder).forward) == inspect.signature(Encoder.forward)
    assert isinstance(encoder.uses_token_type_ids, bool)
    assert isinstance(encoder.config.hidden_size, int) and isinstance(encoder.config.to_dict(), dict)
    assert isinstance(encoder.config.max_position_embeddings, int)
