"""Attention backends over packed (unpadded) sequences.

Every backend takes `q, k, v` of shape `(total_tokens, heads, head_dim)` plus the
`Packing` of the batch and returns `(total_tokens, heads, head_dim)`. `window` is the
half-width of a sliding window (a token attends to keys with |i - j| <= window), or
None for full attention within each sequence. Sequence boundaries are always respected.

`reference_attention` is the padded eager path the tests compare everything against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Packing:
    """Where each sequence lives in a packed `(total_tokens, ...)` tensor."""

    cu_seqlens: torch.Tensor  # (batch + 1,) int32, cumulative sequence lengths starting at 0
    seqlens: list[int]  # python copy of the lengths, for per-sequence loops without device syncs
    max_seqlen: int
    position_ids: torch.Tensor  # (total_tokens,) int64, position of each token within its sequence

    @classmethod
    def from_lengths(cls, lengths: list[int], device: torch.device | str = "cpu") -> Packing:
        if not lengths or min(lengths) <= 0:
            raise ValueError("a packed batch needs at least one sequence and no empty sequence")
        lengths_t = torch.tensor(lengths, dtype=torch.int32)
        cu_seqlens = F.pad(torch.cumsum(lengths_t, 0, dtype=torch.int32), (1, 0))
        starts = torch.repeat_interleave(cu_seqlens[:-1].long(), lengths_t.long())
        position_ids = torch.arange(int(cu_seqlens[-1]), dtype=torch.long) - starts
        return cls(
            cu_seqlens=cu_seqlens.to(device),
            seqlens=list(lengths),
            max_seqlen=max(lengths),
            position_ids=position_ids.to(device),
        )

    @property
    def batch_size(self) -> int:
        return len(self.seqlens)

    @property
    def starts(self) -> list[int]:
        out, total = [], 0
        for length in self.seqlens:
            out.append(total)
            total += length
        return out


AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Packing, int | None, float], torch.Tensor]


def _sliding_window_blocks(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, scale: float
) -> torch.Tensor:
    """Exact sliding-window attention for one sequence in O(length x 3 x window).

    q, k, v: (heads, length, head_dim). Queries are cut into blocks of `window` tokens;
    block b only needs keys from blocks b-1, b and b+1, so each block attends to a
    (3 * window)-key slab instead of the whole sequence.
    """
    heads, length, head_dim = q.shape
    block = window
    n_blocks = math.ceil(length / block)
    tail = n_blocks * block - length
    q_blocks = F.pad(q, (0, 0, 0, tail)).view(
        heads, n_blocks, block, head_dim
    )  # (heads, n_blocks, block, head_dim)
    # One block of zeros before and after so every query block has three key blocks.
    k_padded = F.pad(k, (0, 0, block, block + tail))  # (heads, (n_blocks + 2) * block, head_dim)
    v_padded = F.pad(v, (0, 0, block, block + tail))
    k_slabs = k_padded.unfold(1, 3 * block, block).transpose(-1, -2)  # (heads, n_blocks, 3 * block, head_dim)
    v_slabs = v_padded.unfold(1, 3 * block, block).transpose(-1, -2)

    rows = torch.arange(block, device=q.device)
    cols = torch.arange(3 * block, device=q.device)
    # key offset relative to the query: (cols - block) - rows; inside the window iff |offset| <= window
    in_window = (cols[None, :] - block - rows[:, None]).abs() <= window  # (block, 3 * block)
    key_pos = (
        torch.arange(n_blocks, device=q.device)[:, None] * block - block + cols[None, :]
    )  # (n_blocks, 3 * block)
    in_sequence = (key_pos >= 0) & (key_pos < length)
    mask = in_window[None, :, :] & in_sequence[:, None, :]  # (n_blocks, block, 3 * block)

    out = F.scaled_dot_product_attention(q_blocks, k_slabs, v_slabs, attn_mask=mask, scale=scale)
    return out.reshape(heads, n_blocks * block, head_dim)[:, :length]  # (heads, length, head_dim)


def cpu_varlen_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None, scale: float
) -> torch.Tensor:
    """Per-sequence attention without padding; sliding windows computed block-locally."""
    out = torch.empty_like(q)
    for start, length in zip(packing.starts, packing.seqlens, strict=True):
        end = start + length
        qs = q[start:end].transpose(0, 1)  # (heads, length, head_dim)
        ks = k[start:end].transpose(0, 1)
        vs = v[start:end].transpose(0, 1)
        if window is None or length <= window + 1:
            o = F.scaled_dot_product_attention(qs, ks, vs, scale=scale)
        else:
            o = _sliding_window_blocks(qs, ks, vs, window, scale)
        out[start:end] = o.transpose(0, 1)  # (length, heads, head_dim)
    return out


def flash_varlen_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None, scale: float
) -> torch.Tensor:
    """The `flash-attn` package's variable-length kernel (CUDA, fp16/bf16)."""
    from flash_attn import flash_attn_varlen_func

    return flash_attn_varlen_func(
        q,
        k,
        v,
        cu_seqlens_q=packing.cu_seqlens,
        cu_seqlens_k=packing.cu_seqlens,
        max_seqlen_q=packing.max_seqlen,
        max_seqlen_k=packing.max_seqlen,
        softmax_scale=scale,
        causal=False,
        window_size=(window, window) if window is not None else (-1, -1),
    )


def flash_attn_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


ATTENTION_BACKENDS: dict[str, AttentionFn] = {
    "varlen": cpu_varlen_attention,
    "flash": flash_varlen_attention,
}


def default_backend(device: torch.device, dtype: torch.dtype) -> str:
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and flash_attn_available():
        return "flash"
    return "varlen"


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window: int | None,
    scale: float,
) -> torch.Tensor:
    """Padded eager attention: q, k, v (batch, heads, length, head_dim); key_mask (batch, length) bool."""
    length = q.shape[-2]
    allowed = key_mask[:, None, None, :]  # (batch, 1, 1, length)
    if window is not None:
        pos = torch.arange(length, device=q.device)
        allowed = (
            allowed & ((pos[:, None] - pos[None, :]).abs() <= window)[None, None]
        )  # (batch, 1, length, length)
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v.float()).to(q.dtype)  # (batch, heads, length, head_dim)
