"""An encoder plus a scoring head: packed pairs in, one fp32 logit per pair out."""

from __future__ import annotations

import torch
from torch import nn

from .attention import Packing


class CrossEncoderModel(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    @property
    def config(self):
        return self.encoder.config

    @property
    def uses_token_type_ids(self) -> bool:
        return self.encoder.uses_token_type_ids

    @property
    def encoder_dtype(self) -> torch.dtype:
        return next(self.encoder.parameters()).dtype

    def set_attention_backend(self, backend: str) -> None:
        self.encoder.attention_backend = backend

    def forward(
        self, input_ids: torch.Tensor, packing: Packing, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """input_ids: (total_tokens,) -> logits: (batch,) fp32.

        A CLS-pooling head reads one row per sequence, so the encoder computes its last layer
        for those rows only (same values; ~1/num_layers of the work saved).
        """
        if self.head.pooling_mode == "cls":
            first = self.encoder(
                input_ids, packing, token_type_ids, first_tokens_only=True
            )  # (batch, hidden)
            return self.head.score(first.float())
        hidden = self.encoder(input_ids, packing, token_type_ids)  # (total_tokens, hidden)
        return self.head(hidden, packing)

    def forward_padded(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Eager reference path: right-padded (batch, length) inputs -> logits (batch,) fp32."""
        hidden = self.encoder.forward_padded(
            input_ids, attention_mask, token_type_ids
        )  # (batch, length, hidden)
        lengths = attention_mask.sum(dim=1).tolist()
        packing = Packing.from_lengths(lengths, device=input_ids.device)
        real_tokens = hidden[attention_mask.bool()]  # (total_tokens, hidden), row-major keeps sequence order
        return self.head(real_tokens, packing)
