"""The encoder contract: what `CrossEncoderModel` (and whoever holds its `encoder`) relies on.

Each model family's headless encoder (`ModernBertModel`, `BertModel`) subclasses `Encoder`; stating
the contract once here keeps the families from restating it.

`Encoder` is a base class rather than a Protocol because an encoder is used both ways: as this
contract (config, forward, segment ids) and as the `nn.Module` it is (moved, cast, quantized, saved,
loaded; passed to torch functions that take an `nn.Module`). A type checker has no intersection of a
protocol and a class, so a protocol would restate nn.Module's methods and still could not be handed
to torch; an `nn.Module` subclass states both at once, and mypy checks each family's `forward`
against the one here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self

import torch
from torch import nn

from .attention import Packing


@dataclass
class PackedInputs:
    """One packed batch, what every encoder forward takes: the token ids, their segment ids and the
    `Packing` that says where each sequence lives (they always travel together)."""

    input_ids: torch.Tensor  # (total_tokens,) int64
    token_type_ids: torch.Tensor | None  # (total_tokens,) int64; None for a family without segments
    packing: Packing

    def to(self, device: torch.device) -> PackedInputs:
        return PackedInputs(
            input_ids=self.input_ids.to(device, non_blocking=True),
            token_type_ids=None
            if self.token_type_ids is None
            else self.token_type_ids.to(device, non_blocking=True),
            packing=self.packing.to(device),
        )

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])


class EncoderConfig(Protocol):
    """What is read from any family's config outside its own module."""

    hidden_size: int  # width of the hidden states the head reads
    max_position_embeddings: int  # the longest sequence the encoder takes
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """Read the checkpoint's config.json."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's config.json."""
        ...


class Encoder(nn.Module):
    """A headless encoder over packed pairs: token ids in, hidden states out, no padding anywhere."""

    config: EncoderConfig
    # Whether it reads segment ids (BERT); a family without segment embeddings ignores them.
    uses_token_type_ids: bool
    __call__: Callable[..., torch.Tensor]  # nn.Module's: runs `forward` (with hooks)

    def forward(
        self, inputs: PackedInputs, *, attention: str = "varlen", first_tokens_only: bool = False
    ) -> torch.Tensor:
        """inputs.input_ids, inputs.token_type_ids: (total_tokens,) -> hidden: (total_tokens, hidden), with
        the named backend of `attention.ATTENTION_BACKENDS`.

        With `first_tokens_only` -> (batch, hidden): the rows a CLS-pooling head reads, the last layer
        computed for those rows alone (same values as the full output's first tokens).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement Encoder.forward")
