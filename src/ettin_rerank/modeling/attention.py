"""Attention backends over packed (unpadded) sequences.

Every backend takes `q, k, v` of shape `(total_tokens, heads, head_dim)` plus the
`Packing` of the batch and returns `(total_tokens, heads, head_dim)`. `window` is the
half-width of a sliding window (a token attends to keys with |i - j| <= window), or
None for full attention within each sequence. Sequence boundaries are always respected.

With `first_tokens_only`, `q` holds only each sequence's first-token rows,
`(batch, heads, head_dim)`, and so does the output: the last layer under a CLS-pooling head.

Backends (a small registry; local vs global is decided per layer by `window`):

- `eager`: the reference. Pads every sequence, computes a dense fp32 softmax(q k^T) with
  key-padding and window masks, unpads. Slow and memory-hungry; tests hold every fast path
  to it.
- `varlen` (default on CPU, and on CUDA without a varlen kernel): vectorised over the
  whole packed batch. Sliding-window layers are computed block-locally on the packed
  token stream in O(tokens x 3 x window) with one SDPA call per layer; global layers
  gather the length-sorted sequences into a few padded groups of similar length (at most
  `GROUP_PADDING` padding) and run one key-masked SDPA call per group.
- `flash`: the `flash-attn` package's `flash_attn_varlen_func` (CUDA, fp16/bf16).
- `torch_varlen`: PyTorch's own `torch.nn.attention.varlen.varlen_attn` (CUDA, fp16/bf16).

The fast backends share one first-token kernel (`first_token_attention`, a masked SDPA
over each sequence's visible keys, any device).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

# A global-attention group is padded to its longest member; start a new group when the
# padded size would exceed the real tokens by more than this fraction.
GROUP_PADDING = 0.25
# Query block of the sliding-window kernel: 32-token blocks see a 160-key slab for a 129-key window.
LOCAL_BLOCK = 32


def attention_head_dim(hidden_size: int, num_attention_heads: int) -> int:
    """Width of one attention head; a hidden size that does not split evenly into heads is refused."""
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
        )
    return hidden_size // num_attention_heads


@dataclass
class Packing:
    """Where each sequence lives in a packed `(total_tokens, ...)` tensor."""

    cu_seqlens: torch.Tensor  # (batch + 1,) int32, cumulative sequence lengths starting at 0
    seqlens: list[int]  # python copy of the lengths, for per-sequence loops without device syncs
    max_seqlen: int
    position_ids: torch.Tensor  # (total_tokens,) int64, position of each token within its sequence
    # Per-batch index tensors the attention backends build once and reuse in every layer.
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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
    def total_tokens(self) -> int:
        return sum(self.seqlens)

    @property
    def starts(self) -> list[int]:
        out, total = [], 0
        for length in self.seqlens:
            out.append(total)
            total += length
        return out

    def to(self, device: torch.device | str) -> Packing:
        """The same packing with its tensors on `device` (the cache is rebuilt lazily there)."""
        return Packing(
            cu_seqlens=self.cu_seqlens.to(device, non_blocking=True),
            seqlens=self.seqlens,
            max_seqlen=self.max_seqlen,
            position_ids=self.position_ids.to(device, non_blocking=True),
        )

    def first_tokens(self) -> torch.Tensor:
        """(batch,) int64: the packed row of each sequence's first token (CLS)."""
        if "first_tokens" not in self.cache:
            self.cache["first_tokens"] = self.cu_seqlens[:-1].long()
        return self.cache["first_tokens"]

    def sequence_ids(self) -> torch.Tensor:
        """(total_tokens,) int64: which sequence each token belongs to."""
        if "sequence_ids" not in self.cache:
            device = self.position_ids.device
            lengths = torch.tensor(self.seqlens, dtype=torch.long)
            ids = torch.repeat_interleave(torch.arange(len(self.seqlens)), lengths)
            self.cache["sequence_ids"] = ids.to(device)
        return self.cache["sequence_ids"]


AttentionFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, Packing, int | None, float, bool], torch.Tensor
]


def _sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


# ----------------------------------------------------------------------------------------
# Sliding-window layers: block-local over the packed token stream.
# ----------------------------------------------------------------------------------------


def _local_plan(packing: Packing, window: int, device: torch.device) -> tuple[int, int, int, torch.Tensor]:
    """Block size, blocks per side, number of blocks and the attention mask of a batch.

    The packed stream is cut into blocks of `block` tokens; a query in block b can only see
    keys in blocks b - side .. b + side (|i - j| <= window), so each block attends to a slab
    of (2 * side + 1) blocks. A key is allowed when it lies inside the window and in the
    query's own sequence; the padding around the stream belongs to sequence -1, which only
    padding queries see (so no row is fully masked).
    Mask: (n_blocks, 1, block, slab) bool.
    """
    key = ("local", window, str(device))
    if key not in packing.cache:
        total = packing.total_tokens
        block = max(1, min(LOCAL_BLOCK, window))
        side = math.ceil(window / block)
        slab = (2 * side + 1) * block
        n_blocks = math.ceil(total / block)
        tail = n_blocks * block - total
        seq = packing.sequence_ids().to(device)  # (total_tokens,)
        seq_q = F.pad(seq, (0, tail), value=-1).view(n_blocks, block)  # (n_blocks, block)
        seq_k = F.pad(seq, (side * block, side * block + tail), value=-1).unfold(
            0, slab, block
        )  # (n_blocks, slab)
        rows = torch.arange(block, device=device)
        cols = torch.arange(slab, device=device)
        in_window = (cols[None, :] - side * block - rows[:, None]).abs() <= window  # (block, slab)
        mask = (seq_q[:, :, None] == seq_k[:, None, :]) & in_window  # (n_blocks, block, slab)
        packing.cache[key] = (block, side, n_blocks, mask.unsqueeze(1))
    return packing.cache[key]


def local_block_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int, scale: float
) -> torch.Tensor:
    """Exact sliding-window attention for a whole packed batch in one SDPA call, O(tokens x window)."""
    total, heads, head_dim = q.shape
    block, side, n_blocks, mask = _local_plan(packing, window, q.device)
    tail = n_blocks * block - total
    slab = (2 * side + 1) * block
    q_blocks = F.pad(q, (0, 0, 0, 0, 0, tail)).view(n_blocks, block, heads, head_dim).transpose(1, 2)
    # q_blocks: (n_blocks, heads, block, head_dim)
    pad = (0, 0, 0, 0, side * block, side * block + tail)
    k_slabs = F.pad(k, pad).unfold(0, slab, block).permute(0, 1, 3, 2)
    v_slabs = F.pad(v, pad).unfold(0, slab, block).permute(0, 1, 3, 2)
    # k_slabs, v_slabs: (n_blocks, heads, slab, head_dim)
    out = _sdpa(q_blocks, k_slabs, v_slabs, mask, scale)  # (n_blocks, heads, block, head_dim)
    return out.transpose(1, 2).reshape(n_blocks * block, heads, head_dim)[:total]


# ----------------------------------------------------------------------------------------
# Global layers: sequences of similar length share one padded, key-masked SDPA call.
# ----------------------------------------------------------------------------------------


@dataclass
class _Group:
    gather: torch.Tensor  # (count * length,) int64: packed row of each padded slot (pads point at row 0)
    valid: torch.Tensor  # (count * length,) bool: the slot holds a real token
    key_mask: torch.Tensor | None  # (count, 1, 1, length) bool, None when nothing is padded
    count: int
    length: int
    # first packed row when the group is count x length consecutive rows (nothing padded, packing
    # order): then it is read and written as a view, with no gather or scatter (equal-length batches)
    contiguous_from: int | None = None


def group_sequences(seqlens: list[int], max_padding: float = GROUP_PADDING) -> list[list[int]]:
    """Sequence indices grouped by similar length (longest first): padding each group to its
    longest member adds at most `max_padding` of the group's real tokens."""
    order = sorted(range(len(seqlens)), key=lambda i: -seqlens[i])
    groups: list[list[int]] = []
    current: list[int] = []
    real = 0
    for index in order:
        length = seqlens[index]
        if current:
            longest = seqlens[current[0]]
            if longest * (len(current) + 1) > (1 + max_padding) * (real + length):
                groups.append(current)
                current, real = [], 0
        current.append(index)
        real += length
    if current:
        groups.append(current)
    return groups


def _padded_rows(
    starts: torch.Tensor, lengths: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed row of each slot when sequences are padded to `width`, and which slots are real.

    starts, lengths: (count,) int64 -> gather (count, width) int64 (pads point at row 0), valid (count, width) bool.
    """
    slot = torch.arange(width, dtype=torch.long)  # (width,)
    valid = slot[None, :] < lengths[:, None]  # (count, width)
    return torch.where(valid, starts[:, None] + slot[None, :], 0), valid


def _global_plan(packing: Packing, device: torch.device) -> list[_Group]:
    key = ("global", str(device))
    if key not in packing.cache:
        starts = packing.starts
        groups = []
        for members in group_sequences(packing.seqlens):
            length = packing.seqlens[members[0]]
            count = len(members)
            lengths = torch.tensor([packing.seqlens[i] for i in members], dtype=torch.long)  # (count,)
            first = torch.tensor([starts[i] for i in members], dtype=torch.long)  # (count,)
            gather, valid = _padded_rows(first, lengths, length)  # (count, length) each
            padded = bool((~valid).any())
            rows = gather.reshape(-1)  # (count * length,)
            contiguous = not padded and bool(
                torch.equal(rows, torch.arange(int(rows[0]), int(rows[0]) + len(rows)))
            )
            groups.append(
                _Group(
                    gather=rows.to(device),
                    valid=valid.reshape(-1).to(device),
                    key_mask=valid[:, None, None, :].to(device) if padded else None,
                    count=count,
                    length=length,
                    contiguous_from=int(rows[0]) if contiguous else None,
                )
            )
        packing.cache[key] = groups
    return packing.cache[key]


def global_grouped_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, scale: float
) -> torch.Tensor:
    """Full attention within each sequence, one SDPA call per group of similar lengths."""
    if packing.batch_size == 1:
        one = _sdpa(q[None].transpose(1, 2), k[None].transpose(1, 2), v[None].transpose(1, 2), None, scale)
        return one[0].transpose(0, 1)  # (total_tokens, heads, head_dim)
    groups = _global_plan(packing, q.device)
    if len(groups) == 1 and groups[0].contiguous_from == 0:
        return _group_attention(q, k, v, groups[0], scale)  # one unpadded group: nothing to scatter
    out = torch.empty_like(q)
    for group in groups:
        og = _group_attention(q, k, v, group, scale)  # (count * length, heads, head_dim)
        if group.contiguous_from is not None:
            out[group.contiguous_from : group.contiguous_from + len(og)] = og
        elif group.key_mask is None:
            out.index_copy_(0, group.gather, og)
        else:
            out.index_copy_(0, group.gather[group.valid], og[group.valid])
    return out


def _group_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: _Group, scale: float
) -> torch.Tensor:
    """SDPA over one group's padded rows -> (count * length, heads, head_dim), padding slots included."""
    _, heads, head_dim = q.shape
    shape = (group.count, group.length, heads, head_dim)
    if group.contiguous_from is not None:
        rows = slice(group.contiguous_from, group.contiguous_from + group.count * group.length)
        qg, kg, vg = (t[rows].view(shape).transpose(1, 2) for t in (q, k, v))
    else:
        qg, kg, vg = (t.index_select(0, group.gather).view(shape).transpose(1, 2) for t in (q, k, v))
    # qg, kg, vg: (count, heads, length, head_dim)
    return _sdpa(qg, kg, vg, group.key_mask, scale).transpose(1, 2).reshape(-1, heads, head_dim)


def cpu_varlen_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None, scale: float
) -> torch.Tensor:
    """The fast device-agnostic backend: block-local sliding windows, grouped global attention."""
    if window is None or packing.max_seqlen <= window + 1:
        return global_grouped_attention(q, k, v, packing, scale)
    return local_block_attention(q, k, v, packing, window, scale)


# ----------------------------------------------------------------------------------------
# The last layer under a CLS-pooling head: only the first token of each sequence is read.
# ----------------------------------------------------------------------------------------


def first_token_attention(
    q_first: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    packing: Packing,
    window: int | None,
    scale: float,
) -> torch.Tensor:
    """Attention of each sequence's first token over its keys (all of them, or the first window + 1).

    q_first: (batch, heads, head_dim); k, v: (total_tokens, heads, head_dim) packed
    -> (batch, heads, head_dim). Any device and dtype: one masked SDPA call.
    """
    batch, heads, head_dim = q_first.shape
    key = ("first_token", window, str(q_first.device))
    if key not in packing.cache:
        lengths = torch.tensor(packing.seqlens, dtype=torch.long)  # (batch,)
        visible = lengths if window is None else lengths.clamp(max=window + 1)
        width = int(visible.max())
        starts = torch.tensor(packing.starts, dtype=torch.long)  # (batch,)
        gather, valid = _padded_rows(starts, visible, width)  # (batch, width) each
        mask = None if bool(valid.all()) else valid[:, None, None, :].to(q_first.device)
        packing.cache[key] = (gather.reshape(-1).to(q_first.device), mask, width)
    gather, mask, width = packing.cache[key]
    kg, vg = (
        t.index_select(0, gather).view(batch, width, heads, head_dim).transpose(1, 2) for t in (k, v)
    )  # (batch, heads, width, head_dim)
    out = _sdpa(q_first[:, :, None, :], kg, vg, mask, scale)  # (batch, heads, 1, head_dim)
    return out[:, :, 0]


# ----------------------------------------------------------------------------------------
# CUDA variable-length kernels.
# ----------------------------------------------------------------------------------------


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


def torch_varlen_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None, scale: float
) -> torch.Tensor:
    """PyTorch's own variable-length flash kernel (CUDA, fp16/bf16), sliding window included."""
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn(  # type: ignore[return-value]  # one Tensor without return_aux; torch's stub has no overload for it
        q,
        k,
        v,
        packing.cu_seqlens,
        packing.cu_seqlens,
        packing.max_seqlen,
        packing.max_seqlen,
        scale=scale,
        window_size=(window, window) if window is not None else (-1, -1),
    )


def flash_attn_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def torch_varlen_available() -> bool:
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------------------
# The eager reference: padded, dense, fp32.
# ----------------------------------------------------------------------------------------


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window: int | None,
    scale: float,
    query_positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Padded dense attention in fp32: q (batch, heads, queries, head_dim); k, v (batch, heads, length,
    head_dim); key_mask (batch, length) bool; query_positions (queries,), by default 0 .. length - 1."""
    length = k.shape[-2]
    key_positions = torch.arange(length, device=q.device)
    if query_positions is None:
        query_positions = key_positions
    allowed = key_mask[:, None, None, :]  # (batch, 1, 1, length)
    if window is not None:
        in_window = (query_positions[:, None] - key_positions[None, :]).abs() <= window  # (queries, length)
        allowed = allowed & in_window[None, None]  # (batch, 1, queries, length)
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v.float()).to(q.dtype)  # (batch, heads, queries, head_dim)


def eager_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    packing: Packing,
    window: int | None,
    scale: float,
    first_tokens_only: bool = False,
) -> torch.Tensor:
    """The reference backend: pad each sequence, `reference_attention`, unpad."""
    starts = torch.tensor(packing.starts, dtype=torch.long)
    lengths = torch.tensor(packing.seqlens, dtype=torch.long)
    gather, valid = _padded_rows(starts, lengths, packing.max_seqlen)  # (batch, length) each
    gather, valid = gather.to(k.device), valid.to(k.device)
    k_padded, v_padded = (t[gather].transpose(1, 2) for t in (k, v))  # (batch, heads, length, head_dim)
    if first_tokens_only:
        q_padded = q[:, :, None, :]  # (batch, heads, 1, head_dim): position 0 of each sequence
        positions = torch.zeros(1, dtype=torch.long, device=q.device)
        return reference_attention(q_padded, k_padded, v_padded, valid, window, scale, positions)[:, :, 0]
    q_padded = q[gather].transpose(1, 2)  # (batch, heads, length, head_dim)
    out = reference_attention(q_padded, k_padded, v_padded, valid, window, scale)
    return out.transpose(1, 2)[valid]  # (total_tokens, heads, head_dim): row-major keeps packed order


# ----------------------------------------------------------------------------------------
# Padded rows: the reference on a (batch, length) batch, for graphs traced with static
# shapes' logic (the ONNX export); no engine picks it (`default_backend` never names it).
# ----------------------------------------------------------------------------------------

PADDED_ATTENTION = "padded"


@dataclass
class PaddedPacking(Packing):
    """A padded (batch, length) batch seen as packed rows: sequence i occupies rows i*length ..
    (i+1)*length - 1, padding included. Everything is a tensor computed from shapes, so the
    batch and length axes stay dynamic when traced; only `PADDED_ATTENTION` reads `key_mask`."""

    # (batch, length) bool: True on real tokens. Keyword-only: Packing's fields before it have defaults.
    key_mask: torch.Tensor = field(kw_only=True)

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor) -> PaddedPacking:
        batch, length = attention_mask.shape
        return cls(
            cu_seqlens=torch.arange(batch + 1, dtype=torch.int32) * length,  # (batch + 1,)
            seqlens=[],  # unknown while tracing; the padded backend never reads it
            max_seqlen=length,
            position_ids=torch.arange(length, dtype=torch.long).repeat(batch),  # (batch * length,)
            key_mask=attention_mask.bool(),
        )


def padded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    packing: Packing,
    window: int | None,
    scale: float,
    first_tokens_only: bool = False,
) -> torch.Tensor:
    """The eager reference (`reference_attention`) on rows that are already padded (a `PaddedPacking`).

    q, k, v: (batch * length, heads, head_dim), or q: (batch, heads, head_dim) for first tokens.
    """
    if not isinstance(packing, PaddedPacking):
        raise ValueError(
            f"attention={PADDED_ATTENTION!r} is the backend for padded rows (the ONNX export traces it); "
            "packed batches use 'varlen' or 'eager'"
        )
    mask = packing.key_mask
    batch, length = mask.shape
    heads, head_dim = k.shape[1:]
    k_padded, v_padded = (
        t.reshape(batch, length, heads, head_dim).transpose(1, 2) for t in (k, v)
    )  # (batch, heads, length, head_dim)
    if first_tokens_only:
        positions = torch.zeros(1, dtype=torch.long, device=q.device)
        return reference_attention(q[:, :, None, :], k_padded, v_padded, mask, window, scale, positions)[
            :, :, 0
        ]  # (batch, heads, head_dim)
    q_padded = q.reshape(batch, length, heads, head_dim).transpose(1, 2)
    out = reference_attention(q_padded, k_padded, v_padded, mask, window, scale)
    return out.transpose(1, 2).reshape(batch * length, heads, head_dim)


# ----------------------------------------------------------------------------------------
# The registry.
# ----------------------------------------------------------------------------------------


def _first_tokens_by_kernel(packed: Callable[..., torch.Tensor]) -> AttentionFn:
    """A packed kernel as a backend: first-token rows go to the shared `first_token_attention`."""

    def backend(q, k, v, packing, window, scale, first_tokens_only=False):
        if first_tokens_only:
            return first_token_attention(q, k, v, packing, window, scale)
        return packed(q, k, v, packing, window, scale)

    backend.__name__ = backend.__qualname__ = packed.__name__
    backend.__doc__ = packed.__doc__
    return backend


ATTENTION_BACKENDS: dict[str, AttentionFn] = {
    "eager": eager_attention,
    "varlen": _first_tokens_by_kernel(cpu_varlen_attention),
    "flash": _first_tokens_by_kernel(flash_varlen_attention),
    "torch_varlen": _first_tokens_by_kernel(torch_varlen_attention),
    PADDED_ATTENTION: padded_attention,
}


# FlashAttention-2's kernels, flash-attn's and PyTorch's varlen alike, run on Ampere (8.0) and newer
FLASH_MIN_CAPABILITY = (8, 0)


def cuda_flash_capable(device: torch.device) -> bool:
    """Whether this CUDA device can run the FlashAttention-2 kernels (a T4 or V100 cannot); False where
    torch has no CUDA at all, so that a device is only asked about on a machine that has one."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= FLASH_MIN_CAPABILITY


def default_backend(device: torch.device, dtype: torch.dtype) -> str:
    """flash-attn, else PyTorch's varlen kernel on CUDA half precision where the GPU runs FlashAttention-2;
    the vectorised `varlen` otherwise (any device and dtype: PyTorch's SDPA picks a kernel the GPU has)."""
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and cuda_flash_capable(device):
        if flash_attn_available():
            return "flash"
        if torch_varlen_available():
            return "torch_varlen"
    return "varlen"


def check_backend(name: str) -> str:
    """`name` if it is a registered backend; otherwise a ValueError listing them."""
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {sorted(ATTENTION_BACKENDS)}")
    return name
