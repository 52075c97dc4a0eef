"""Length-sorted token-budget batches over packed (unpadded) pairs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..modeling.attention import Packing
from .tokenization import EncodedPairs


def plan_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Group pair indices into batches of at most `batch_tokens` real tokens, longest first.

    A pair longer than the budget gets a batch of its own. Sorting by length keeps the
    per-sequence work of a batch similar and makes the largest batch come first, so memory
    peaks early rather than at the end of a long run.
    """
    if batch_tokens <= 0:
        raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start, used = 0, 0
    for position, index in enumerate(order):
        length = int(lengths[index])
        if used and used + length > batch_tokens:
            batches.append(order[start:position])
            start, used = position, 0
        used += length
    if start < len(order):
        batches.append(order[start:])
    return batches


@dataclass
class PackedInputs:
    input_ids: torch.Tensor  # (total_tokens,) int64
    token_type_ids: torch.Tensor | None  # (total_tokens,) int64
    packing: Packing

    def to(self, device: torch.device) -> PackedInputs:
        return PackedInputs(
            input_ids=self.input_ids.to(device, non_blocking=True),
            token_type_ids=None
            if self.token_type_ids is None
            else self.token_type_ids.to(device, non_blocking=True),
            packing=Packing(
                cu_seqlens=self.packing.cu_seqlens.to(device, non_blocking=True),
                seqlens=self.packing.seqlens,
                max_seqlen=self.packing.max_seqlen,
                position_ids=self.packing.position_ids.to(device, non_blocking=True),
            ),
        )


def pack(encoded: EncodedPairs, indices: np.ndarray) -> PackedInputs:
    """Concatenate the selected pairs into one packed batch (CPU tensors)."""
    input_ids = torch.from_numpy(np.concatenate([encoded.input_ids[i] for i in indices]))
    token_type_ids = (
        None
        if encoded.token_type_ids is None
        else torch.from_numpy(np.concatenate([encoded.token_type_ids[i] for i in indices]))
    )
    lengths = [len(encoded.input_ids[i]) for i in indices]
    return PackedInputs(input_ids, token_type_ids, Packing.from_lengths(lengths))


def iter_packed(encoded: EncodedPairs, batch_tokens: int) -> Iterator[tuple[np.ndarray, PackedInputs]]:
    for indices in plan_batches(encoded.lengths, batch_tokens):
        yield indices, pack(encoded, indices)
