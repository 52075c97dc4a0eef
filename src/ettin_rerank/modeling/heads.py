"""Scoring heads: pooled rows of a packed batch -> one fp32 logit per sequence.

Every head has a `pooling_mode` and one `forward(pooled)`: (batch, hidden) fp32 -> (batch,)
logits. `CrossEncoderModel` does the pooling (`pool`); a "cls" head lets the encoder compute
its last layer for first tokens only, whose rows are then the pooled rows.

Heads always run in fp32 whatever the encoder's dtype, so half-precision encoders
never tie or saturate the final scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .activations import activation_from_config_name
from .attention import Packing

POOLING_MODES = ("cls", "mean")


def pool(hidden: torch.Tensor, packing: Packing, mode: str) -> torch.Tensor:
    """hidden: (total_tokens, hidden) -> (batch, hidden) in fp32."""
    if mode == "cls":
        return hidden[packing.first_tokens()].float()  # (batch, hidden)
    if mode == "mean":
        lengths = torch.tensor(packing.seqlens, device=hidden.device)
        sequence_of_token = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)
        sums = torch.zeros(len(lengths), hidden.shape[-1], device=hidden.device, dtype=torch.float32)
        sums.index_add_(0, sequence_of_token, hidden.float())
        return sums / lengths[:, None].float()  # (batch, hidden)
    raise ValueError(f"unsupported pooling mode {mode!r}; supported: {POOLING_MODES}")


class Head(nn.Module):
    """What `CrossEncoderModel` relies on in a head (the module docstring): each head subclasses it."""

    pooling_mode: str  # one of POOLING_MODES: which rows of the encoder's output the head reads
    __call__: Callable[..., torch.Tensor]  # nn.Module's: runs `forward(pooled)`, (batch,) logits


class SentenceTransformersDense(nn.Module):
    """Sentence Transformers' Dense module: `linear` then an activation (weights in `N_Dense/`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: nn.Module):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))


class SentenceTransformersLayerNorm(nn.Module):
    """Sentence Transformers' LayerNorm module (weights in `N_LayerNorm/` as `norm.*`)."""

    def __init__(self, dimension: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dimension, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ModularHead(Head):
    """The modular CrossEncoder head: Pooling then Dense/LayerNorm modules in order.

    For the Ettin family: cls -> Dense(H, H, no bias, GELU) -> LayerNorm(H) -> Dense(H, 1, bias).
    """

    def __init__(self, pooling_mode: str, layers: list[nn.Module]):
        super().__init__()
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"unsupported pooling mode {pooling_mode!r}; supported: {POOLING_MODES}")
        self.pooling_mode = pooling_mode
        self.layers = nn.ModuleList(layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (batch, hidden) fp32 -> (batch,) logits."""
        x = pooled
        for layer in self.layers:
            x = layer(x)
        return x.squeeze(-1)  # (batch,)

    @classmethod
    def ettin(cls, hidden_size: int, generator: torch.Generator | None = None) -> ModularHead:
        """The Ettin head; with a `generator`, Dense weights get a seeded truncated-normal init (std 0.02)."""
        head = cls(
            "cls",
            [
                SentenceTransformersDense(hidden_size, hidden_size, bias=False, activation=nn.GELU()),
                SentenceTransformersLayerNorm(hidden_size),
                SentenceTransformersDense(hidden_size, 1, bias=True, activation=nn.Identity()),
            ],
        )
        if generator is not None:
            with torch.no_grad():
                for layer in head.layers:
                    if isinstance(layer, SentenceTransformersDense):
                        nn.init.trunc_normal_(
                            layer.linear.weight, std=0.02, a=-0.04, b=0.04, generator=generator
                        )
                        if layer.linear.bias is not None:
                            layer.linear.bias.zero_()
        return head


class ModernBertPredictionHead(nn.Module):
    def __init__(self, hidden_size: int, bias: bool, activation: str, eps: float, norm_bias: bool):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.act = activation_from_config_name(activation)
        self.norm = nn.LayerNorm(hidden_size, eps=eps, bias=norm_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(x)))


class ModernBertClassificationHead(Head):
    """transformers' ModernBertForSequenceClassification head (`head.*`, `classifier.*`)."""

    def __init__(self, config: dict):
        super().__init__()
        hidden = int(config["hidden_size"])
        self.pooling_mode = config.get("classifier_pooling", "cls")
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(
                f"unsupported classifier_pooling {self.pooling_mode!r}; supported: {POOLING_MODES}"
            )
        self.head = ModernBertPredictionHead(
            hidden,
            bias=bool(config.get("classifier_bias", False)),
            activation=config.get("classifier_activation", "gelu"),
            eps=float(config.get("norm_eps", 1e-5)),
            norm_bias=bool(config.get("norm_bias", False)),
        )
        self.classifier = nn.Linear(hidden, num_labels(config))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (batch, hidden) fp32 -> (batch,) logits."""
        return self.classifier(self.head(pooled)).squeeze(-1)


class BertPooler(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x))


class BertClassificationHead(Head):
    """transformers' BertForSequenceClassification head: the pooler (`bert.pooler.*`) and `classifier.*`."""

    def __init__(self, config: dict):
        super().__init__()
        hidden = int(config["hidden_size"])
        self.pooling_mode = "cls"
        self.pooler = BertPooler(hidden)
        self.classifier = nn.Linear(hidden, num_labels(config))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (batch, hidden) fp32 -> (batch,) logits."""
        return self.classifier(self.pooler(pooled)).squeeze(-1)


def num_labels(config: dict) -> int:
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    if labels != 1:
        raise ValueError(
            f"this checkpoint has {labels} output labels; a reranker needs exactly one relevance logit per pair"
        )
    return 1
