"""BERT encoder (the MiniLM-style cross-encoders Ettin replaces), unpadded.

Absolute position and token type embeddings, post-norm layers. Parameter names match
transformers' `BertModel`, so checkpoints load without a mapping table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .activations import activation_from_config_name
from .attention import ATTENTION_BACKENDS, Packing, attention_head_dim
from .encoder import Encoder, PackedInputs


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536  # width of the feed-forward layer
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512  # absolute position table size: the hard length limit
    type_vocab_size: int = 2  # segment embeddings: 0 for the query, 1 for the document
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        attention_head_dim(self.hidden_size, self.num_attention_heads)  # refuses an uneven split

    @property
    def head_dim(self) -> int:
        return attention_head_dim(self.hidden_size, self.num_attention_heads)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BertConfig:
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"position_embedding_type {raw['position_embedding_type']!r} is not supported")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "model_type": "bert",
            "architectures": ["BertModel"],
            "position_embedding_type": "absolute",
            "dtype": "float32",  # compute dtype; stored weights may be fp16
        }


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids, position_ids, token_type_ids) -> torch.Tensor:
        embeddings = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(position_ids)
        )
        return self.LayerNorm(embeddings)


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        return projected.unflatten(-1, (self.num_heads, self.head_dim))  # (rows, heads, head_dim)


class BertResidualOutput(nn.Module):
    """dense, then LayerNorm over the sum with the residual: BERT's attention output (`*.attention.output`,
    from hidden_size) and its feed-forward output (`*.output`, from intermediate_size)."""

    def __init__(self, in_features: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, projected: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(projected) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config.hidden_size, config)
        self.scale = config.head_dim**-0.5

    def forward(
        self, hidden: torch.Tensor, packing: Packing, attention: str, first_tokens_only: bool = False
    ) -> torch.Tensor:
        """(total_tokens, hidden) -> (total_tokens, hidden), or (batch, hidden) for each sequence's
        first token when `first_tokens_only` (keys and values still cover every token)."""
        rows = hidden[packing.first_tokens()] if first_tokens_only else hidden  # (batch or tokens, hidden)
        heads = self.self.split_heads
        q = heads(self.self.query(rows))  # (rows, heads, head_dim)
        k, v = heads(self.self.key(hidden)), heads(self.self.value(hidden))  # (total_tokens, heads, head_dim)
        context = ATTENTION_BACKENDS[attention](q, k, v, packing, None, self.scale, first_tokens_only)
        return self.output(context.flatten(-2), rows)  # (rows, hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation_from_config_name(config.hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config.intermediate_size, config)

    def forward(
        self, hidden: torch.Tensor, packing: Packing, attention: str, first_tokens_only: bool = False
    ) -> torch.Tensor:
        attended = self.attention(hidden, packing, attention, first_tokens_only)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))


class BertModel(Encoder):
    """Headless BERT encoder, an `Encoder` (encoder.py): packed token ids in, packed hidden states out.

    The pooler belongs to the classification head (see heads.py), not to the encoder.
    """

    config: BertConfig  # the family's own, an EncoderConfig

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)

    uses_token_type_ids = True  # segment embeddings: query 0, document 1

    def forward(
        self, inputs: PackedInputs, *, attention: str = "varlen", first_tokens_only: bool = False
    ) -> torch.Tensor:
        """`Encoder.forward` (encoder.py); missing `token_type_ids` read as all zeros."""
        input_ids, packing, token_type_ids = inputs.input_ids, inputs.packing, inputs.token_type_ids
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, packing.position_ids, token_type_ids)  # (total_tokens, hidden)
        last = len(self.encoder.layer) - 1
        for index, layer in enumerate(self.encoder.layer):
            hidden = layer(hidden, packing, attention, first_tokens_only and index == last)
        return hidden

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, std, generator=generator)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
