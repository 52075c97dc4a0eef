"""ModernBERT encoder, unpadded through every layer.

Parameter names match transformers' `ModernBertModel` checkpoints, so a saved state
dict loads without a mapping table. Inputs stay packed (real tokens only) through every
layer; the attention backend is an argument of `forward`, and the `eager` backend is the
padded reference the tests hold the fast ones to.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .activations import activation_from_config_name
from .attention import ATTENTION_BACKENDS, Packing, attention_head_dim
from .encoder import Encoder, PackedInputs

FULL_ATTENTION = "full_attention"
SLIDING_ATTENTION = "sliding_attention"


@dataclass
class ModernBertConfig:
    vocab_size: int = 50368  # rows of the token embedding table
    hidden_size: int = 768  # width of the residual stream
    intermediate_size: int = 1152  # GeGLU half-width: Wi projects to 2x this, Wo back from 1x
    num_hidden_layers: int = 22
    num_attention_heads: int = 12  # head_dim = hidden_size / num_attention_heads
    hidden_activation: str = "gelu"  # the GLU's activation, transformers' ACT2FN name
    max_position_embeddings: int = 8192  # longest sequence RoPE was trained for
    norm_eps: float = 1e-5
    norm_bias: bool = False  # LayerNorms carry a bias
    attention_bias: bool = False  # Wqkv and Wo carry a bias
    mlp_bias: bool = False  # Wi and Wo carry a bias
    global_rope_theta: float = 160_000.0  # RoPE base on full-attention layers
    local_rope_theta: float = 10_000.0  # RoPE base on sliding-window layers
    local_attention: int = 128  # full width of the sliding window; each side sees local_attention // 2
    layer_types: list[str] = field(default_factory=list)  # per layer: full_attention | sliding_attention
    pad_token_id: int = 50283
    cls_token_id: int = 50281
    sep_token_id: int = 50282
    initializer_range: float = 0.02  # std of the random init (used only to build random models)
    initializer_cutoff_factor: float = 2.0  # truncation of the random init, in stds

    def __post_init__(self) -> None:
        if not self.layer_types:
            self.layer_types = layer_types_every_n(self.num_hidden_layers, 3)
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries for {self.num_hidden_layers} layers"
            )
        unknown = set(self.layer_types) - {FULL_ATTENTION, SLIDING_ATTENTION}
        if unknown:
            raise ValueError(
                f"unknown layer types {sorted(unknown)}; expected {FULL_ATTENTION} or {SLIDING_ATTENTION}"
            )
        attention_head_dim(self.hidden_size, self.num_attention_heads)  # refuses an uneven split

    @property
    def head_dim(self) -> int:
        return attention_head_dim(self.hidden_size, self.num_attention_heads)

    @property
    def half_window(self) -> int:
        return self.local_attention // 2

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModernBertConfig:
        """Read a transformers config.json, old (global_rope_theta) or new (rope_parameters) style."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in raw.items() if k in known and v is not None}
        rope = raw.get("rope_parameters") or {}
        if isinstance(rope.get(FULL_ATTENTION), dict) and "rope_theta" in rope[FULL_ATTENTION]:
            values["global_rope_theta"] = float(rope[FULL_ATTENTION]["rope_theta"])
        if isinstance(rope.get(SLIDING_ATTENTION), dict) and "rope_theta" in rope[SLIDING_ATTENTION]:
            values["local_rope_theta"] = float(rope[SLIDING_ATTENTION]["rope_theta"])
        for layer_type, params in rope.items():
            if isinstance(params, dict) and params.get("rope_type", "default") != "default":
                raise ValueError(f"rope_type {params['rope_type']!r} on {layer_type} layers is not supported")
        if not raw.get("layer_types"):
            every = int(raw.get("global_attn_every_n_layers", 3))
            values["layer_types"] = layer_types_every_n(int(values.get("num_hidden_layers", 22)), every)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A config.json that transformers (4.x and 5.x) and Sentence Transformers load."""
        out = asdict(self)
        out.update(
            architectures=["ModernBertModel"],
            model_type="modernbert",
            bos_token_id=self.cls_token_id,
            eos_token_id=self.sep_token_id,
            classifier_pooling="cls",
            # Weights may be stored in fp16; loaders should still compute in fp32 unless told otherwise.
            dtype="float32",
            rope_parameters={
                FULL_ATTENTION: {"rope_theta": self.global_rope_theta, "rope_type": "default"},
                SLIDING_ATTENTION: {"rope_theta": self.local_rope_theta, "rope_type": "default"},
            },
        )
        every = _every_n(self.layer_types)
        if every is not None:
            out["global_attn_every_n_layers"] = every
        return out


def layer_types_every_n(num_layers: int, every: int) -> list[str]:
    return [FULL_ATTENTION if i % every == 0 else SLIDING_ATTENTION for i in range(num_layers)]


def _every_n(layer_types: list[str]) -> int | None:
    for every in range(1, len(layer_types) + 1):
        if layer_types_every_n(len(layer_types), every) == layer_types:
            return every
    return None


def rope_inv_freq(theta: float, head_dim: int) -> torch.Tensor:
    # Same float32 expression as transformers, so fp32 scores agree to the last bits.
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))


def rope_cos_sin(
    position_ids: torch.Tensor, theta: float, head_dim: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape position_ids.shape + (head_dim,), rounded to the activations' dtype like transformers."""
    inv_freq = rope_inv_freq(theta, head_dim).to(position_ids.device)
    freqs = position_ids.float()[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rope_cos_signed_sin(
    position_ids: torch.Tensor, theta: float, head_dim: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for `apply_rope`: shape (tokens, 1, 1, head_dim), sin negated on its first half."""
    cos, sin = rope_cos_sin(position_ids, theta, head_dim, dtype)  # (tokens, head_dim)
    half = head_dim // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return cos.float()[:, None, None, :], signed_sin.float()[:, None, None, :]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """RoPE in fp32, transformers' x * cos + rotate_half(x) * sin written as roll(x) * signed_sin (one pass fewer).

    x: (tokens, ..., head_dim); cos, signed_sin: (tokens, 1, 1, head_dim) fp32.
    """
    x32 = x.float()
    rotated = torch.roll(x32, x.shape[-1] // 2, dims=-1)  # cat(x2, x1)
    out = x32 * cos
    out.add_(rotated.mul_(signed_sin))
    return out.to(x.dtype)


class ModernBertEmbeddings(nn.Module):
    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.tok_embeddings(input_ids))


class ModernBertMLP(nn.Module):
    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = activation_from_config_name(config.hidden_activation)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        value, gate = self.Wi(hidden).chunk(2, dim=-1)
        return self.Wo(self.act(value) * gate)


class ModernBertAttention(nn.Module):
    def __init__(self, config: ModernBertConfig, layer_idx: int):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scale = self.head_dim**-0.5
        self.is_global = config.layer_types[layer_idx] == FULL_ATTENTION
        self.window = None if self.is_global else config.half_window
        self.rope_theta = config.global_rope_theta if self.is_global else config.local_rope_theta
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)

    def forward(
        self,
        hidden: torch.Tensor,
        packing: Packing,
        rope: dict[float, tuple[torch.Tensor, torch.Tensor]],
        attention: str,
        first_tokens_only: bool = False,
    ) -> torch.Tensor:
        """hidden: (total_tokens, hidden) -> (total_tokens, hidden), or (batch, hidden) for each
        sequence's first token when `first_tokens_only` (keys and values still cover every token)."""
        qkv = self.Wqkv(hidden).unflatten(
            -1, (3, self.num_heads, self.head_dim)
        )  # (tokens, 3, heads, head_dim)
        cos, signed_sin = rope[self.rope_theta]  # (tokens, 1, 1, head_dim) each
        rotated = apply_rope(qkv[:, :2], cos, signed_sin)  # (tokens, 2, heads, head_dim): q and k in one pass
        q, k, v = rotated[:, 0], rotated[:, 1], qkv[:, 2]  # (tokens, heads, head_dim) each
        if first_tokens_only:
            q = q[packing.first_tokens()]  # (batch, heads, head_dim)
        out = ATTENTION_BACKENDS[attention](q, k, v, packing, self.window, self.scale, first_tokens_only)
        return self.Wo(out.flatten(-2))  # (total_tokens or batch, hidden)


class ModernBertEncoderLayer(nn.Module):
    def __init__(self, config: ModernBertConfig, layer_idx: int):
        super().__init__()
        # The first layer's input is already normalised by the embeddings.
        self.attn_norm = (
            nn.Identity()
            if layer_idx == 0
            else nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        )
        self.attn = ModernBertAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = ModernBertMLP(config)

    def forward(
        self, hidden: torch.Tensor, packing: Packing, rope, attention: str, first_tokens_only: bool = False
    ) -> torch.Tensor:
        """(total_tokens, hidden) -> (total_tokens, hidden), or (batch, hidden) when `first_tokens_only`."""
        attended = self.attn(self.attn_norm(hidden), packing, rope, attention, first_tokens_only)
        if first_tokens_only:
            hidden = hidden[packing.first_tokens()]  # (batch, hidden)
        hidden = hidden + attended
        return hidden + self.mlp(self.mlp_norm(hidden))


class ModernBertModel(Encoder):
    """Headless encoder, an `Encoder` (encoder.py): packed token ids in, packed hidden states out."""

    config: ModernBertConfig  # the family's own, an EncoderConfig

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.config = config
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(
            ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    uses_token_type_ids = False  # no segment embeddings

    def forward(
        self, inputs: PackedInputs, *, attention: str = "varlen", first_tokens_only: bool = False
    ) -> torch.Tensor:
        """`Encoder.forward` (encoder.py). With `first_tokens_only` the last layer runs its attention,
        output projection and MLP for the first tokens alone."""
        packing = inputs.packing  # token_type_ids go unread: ModernBERT has no segment embeddings
        hidden = self.embeddings(inputs.input_ids)  # (total_tokens, hidden)
        rope = {
            theta: rope_cos_signed_sin(packing.position_ids, theta, self.config.head_dim, hidden.dtype)
            for theta in {self.config.global_rope_theta, self.config.local_rope_theta}
        }
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden, packing, rope, attention, first_tokens_only and index == last)
        return self.final_norm(hidden)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """transformers' ModernBERT init: truncated normals, smaller std on output projections."""
        cfg = self.config
        std_in = cfg.initializer_range
        std_out = cfg.initializer_range / math.sqrt(2.0 * cfg.num_hidden_layers)

        def trunc_normal(weight: torch.Tensor, std: float) -> None:
            cutoff = cfg.initializer_cutoff_factor * std
            nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-cutoff, b=cutoff, generator=generator)

        trunc_normal(self.embeddings.tok_embeddings.weight, std_in)
        for layer in self.layers:
            assert isinstance(layer, ModernBertEncoderLayer)  # nn.ModuleList's items are typed nn.Module
            trunc_normal(layer.attn.Wqkv.weight, std_in)
            trunc_normal(layer.attn.Wo.weight, std_out)
            trunc_normal(layer.mlp.Wi.weight, std_in)
            trunc_normal(layer.mlp.Wo.weight, std_out)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()


__all__ = ["ModernBertConfig", "ModernBertModel"]
