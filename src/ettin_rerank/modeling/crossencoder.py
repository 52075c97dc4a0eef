"""An encoder plus a scoring head: packed pairs in, one fp32 logit per pair out."""

from __future__ import annotations

import torch
from torch import nn

from .encoder import Encoder, EncoderConfig, PackedInputs
from .heads import Head, pool


class CrossEncoderModel(nn.Module):
    def __init__(self, encoder: Encoder, head: Head):
        super().__init__()
        self.encoder = encoder
        self.head = head

    @property
    def config(self) -> EncoderConfig:
        return self.encoder.config

    @property
    def uses_token_type_ids(self) -> bool:
        return self.encoder.uses_token_type_ids

    @property
    def encoder_dtype(self) -> torch.dtype:
        return next(self.encoder.parameters()).dtype

    def forward(self, inputs: PackedInputs, *, attention: str = "varlen") -> torch.Tensor:
        """inputs.input_ids: (total_tokens,) -> logits: (batch,) fp32, with the named attention backend.

        A CLS-pooling head reads one row per sequence, so the encoder computes its last layer
        for those rows only (same values; ~1/num_layers of the work saved).
        """
        if self.head.pooling_mode == "cls":
            pooled = self.encoder(
                inputs, attention=attention, first_tokens_only=True
            ).float()  # (batch, hidden)
        else:
            hidden = self.encoder(inputs, attention=attention)  # (total_tokens, hidden)
            pooled = pool(hidden, inputs.packing, self.head.pooling_mode)  # (batch, hidden) fp32
        return self.head(pooled)
