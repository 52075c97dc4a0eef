"""The encoder contract: what `CrossEncoderModel` (and whoever holds its `encoder`) relies on.

Each model family's headless encoder (`ModernBertModel`, `BertModel`) is an `nn.Module` that meets
it; stating it once here keeps the families from restating it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from torch import nn

from .attention import Packing


class EncoderConfig(Protocol):
    """What is read from any family's config outside its own module."""

    hidden_size: int  # width of the hidden states the head reads
    max_position_embeddings: int  # the longest sequence the encoder takes

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's config.json."""
        ...


class Encoder(Protocol):
    """A headless encoder over packed pairs: token ids in, hidden states out, no padding anywhere."""

    config: EncoderConfig
    __call__: Callable[..., torch.Tensor]  # nn.Module's: runs `forward` (with hooks)

    @property
    def uses_token_type_ids(self) -> bool:
        """Whether it reads segment ids (BERT); a family without segment embeddings ignores them."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """nn.Module's; the first parameter's dtype is the encoder's compute dtype."""
        ...

    def forward(
        self,
        input_ids: torch.Tensor,
        packing: Packing,
        token_type_ids: torch.Tensor | None = None,
        *,
        attention: str = "varlen",
        first_tokens_only: bool = False,
    ) -> torch.Tensor:
        """input_ids, token_type_ids: (total_tokens,) -> hidden: (total_tokens, hidden), with the named
        backend of `attention.ATTENTION_BACKENDS`.

        With `first_tokens_only` -> (batch, hidden): the rows a CLS-pooling head reads, the last layer
        computed for those rows alone (same values as the full output's first tokens).
        """
        ...
