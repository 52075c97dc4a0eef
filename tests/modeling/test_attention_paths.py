"""Every attention path equals the padded eager reference (fp32, within 1e-5)."""

from __future__ import annotations

import pytest
import torch

from ettin_rerank.modeling.attention import (
    ATTENTION_BACKENDS,
    PADDED_ATTENTION,
    Packing,
    _global_plan,
    default_backend,
    first_token_attention,
    global_grouped_attention,
    group_sequences,
    local_block_attention,
    reference_attention,
)

LENGTHS = [
    [1],
    [5, 70, 129, 300, 1, 64, 65, 200],
    [33] * 7,
    [700, 3, 450],
    [130, 128, 127, 2, 66, 31, 32],
    [50, 50, 50, 10, 10, 200, 200],  # equal-length runs mid-batch: groups read and written as views
]


def padded_reference(q, k, v, packing: Packing, window, scale):
    """Pad each sequence, run `reference_attention`, unpack: the ground truth."""
    batch, length = packing.batch_size, packing.max_seqlen
    heads, head_dim = q.shape[1:]

    def to_padded(t):
        out = torch.zeros(batch, length, heads, head_dim)
        for i, (s, n) in enumerate(zip(packing.starts, packing.seqlens, strict=True)):
            out[i, :n] = t[s : s + n]
        return out.transpose(1, 2)  # (batch, heads, length, head_dim)

    mask = torch.arange(length)[None, :] < torch.tensor(packing.seqlens)[:, None]
    out = reference_attention(to_padded(q), to_padded(k), to_padded(v), mask, window, scale).transpose(1, 2)
    return torch.cat([out[i, :n] for i, n in enumerate(packing.seqlens)])


@pytest.mark.parametrize("lengths", LENGTHS, ids=lambda x: f"{len(x)}seqs")
@pytest.mark.parametrize("window", [None, 64, 16])
@pytest.mark.parametrize("backend", ["varlen", "eager"])
def test_backend_matches_padded_reference(lengths, window, backend):
    torch.manual_seed(0)
    total, heads, head_dim = sum(lengths), 2, 16
    q, k, v = (torch.randn(total, heads, head_dim) for _ in range(3))
    packing = Packing.from_lengths(lengths)
    got = ATTENTION_BACKENDS[backend](q, k, v, packing, window, head_dim**-0.5)
    want = padded_reference(q, k, v, packing, window, head_dim**-0.5)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lengths", LENGTHS, ids=lambda x: f"{len(x)}seqs")
@pytest.mark.parametrize("window", [None, 64, 16])
def test_first_token_attention_matches_the_reference_rows(lengths, window):
    torch.manual_seed(3)
    total, heads, head_dim = sum(lengths), 2, 16
    q, k, v = (torch.randn(total, heads, head_dim) for _ in range(3))
    packing = Packing.from_lengths(lengths)
    first = packing.first_tokens()
    want = padded_reference(q, k, v, packing, window, head_dim**-0.5)[first]
    got = first_token_attention(q[first], k, v, packing, window, head_dim**-0.5)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for backend in ("varlen", "eager"):
        got = ATTENTION_BACKENDS[backend](q[first], k, v, packing, window, head_dim**-0.5, True)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_block_local_equals_masked_full_attention_on_one_long_sequence():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1000, 2, 32) for _ in range(3))
    packing = Packing.from_lengths([1000])
    got = local_block_attention(q, k, v, packing, 64, 0.2)
    want = padded_reference(q, k, v, packing, 64, 0.2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_grouped_global_attention_reuses_its_plan_across_layers():
    torch.manual_seed(2)
    packing = Packing.from_lengths([300, 290, 100, 90, 10])
    q, k, v = (torch.randn(790, 2, 16) for _ in range(3))
    first = global_grouped_attention(q, k, v, packing, 0.25)
    assert any(key[0] == "global" for key in packing.cache)
    torch.testing.assert_close(global_grouped_attention(q, k, v, packing, 0.25), first)


@pytest.mark.parametrize("max_padding", [0.0, 0.25, 1.0])
def test_groups_cover_every_sequence_and_bound_padding(max_padding):
    lengths = [512, 500, 480, 300, 299, 20, 7, 7, 1]
    groups = group_sequences(lengths, max_padding)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        real = sum(lengths[i] for i in group)
        padded = max(lengths[i] for i in group) * len(group)
        assert padded <= (1 + max_padding) * real or len(group) == 1


def test_default_backend_choice(monkeypatch):
    import ettin_rerank.modeling.attention as attention

    assert default_backend(torch.device("cpu"), torch.float32) == "varlen"
    assert default_backend(torch.device("cpu"), torch.bfloat16) == "varlen"
    assert default_backend(torch.device("cuda"), torch.float32) == "varlen"
    if not torch.cuda.is_available():  # asking about a CUDA device on a machine without one does not raise
        assert default_backend(torch.device("cuda"), torch.bfloat16) == "varlen"
    monkeypatch.setattr(attention, "cuda_flash_capable", lambda device: False)  # a T4, a V100
    monkeypatch.setattr(attention, "flash_attn_available", lambda: True)
    monkeypatch.setattr(attention, "torch_varlen_available", lambda: True)
    assert default_backend(torch.device("cuda"), torch.bfloat16) == "varlen"
    assert default_backend(torch.device("cuda"), torch.float16) == "varlen"
    monkeypatch.setattr(attention, "cuda_flash_capable", lambda device: True)
    assert default_backend(torch.device("cuda"), torch.bfloat16) == "flash"
    monkeypatch.setattr(attention, "flash_attn_available", lambda: False)
    monkeypatch.setattr(attention, "torch_varlen_available", lambda: True)
    assert default_backend(torch.device("cuda"), torch.float16) == "torch_varlen"
    monkeypatch.setattr(attention, "torch_varlen_available", lambda: False)
    assert default_backend(torch.device("cuda"), torch.bfloat16) == "varlen"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["varlen", "torch_varlen", "flash"])
def test_cuda_backends_match_reference(backend):
    import ettin_rerank.modeling.attention as attention

    if backend == "flash" and not attention.flash_attn_available():
        pytest.skip("flash-attn is not installed")
    torch.manual_seed(3)
    lengths = [5, 70, 129, 300, 1, 64, 65, 200]
    q, k, v = (torch.randn(sum(lengths), 4, 64) for _ in range(3))
    packing = Packing.from_lengths(lengths)
    for window in (None, 64):
        want = padded_reference(q, k, v, packing, window, 0.125)
        dev = packing.to("cuda")
        got = (
            ATTENTION_BACKENDS[backend](*(t.cuda().bfloat16() for t in (q, k, v)), dev, window, 0.125)
            .float()
            .cpu()
        )
        torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)


def test_equal_length_runs_are_read_as_views_and_padded_groups_gathered():
    packing = Packing.from_lengths([50, 50, 50, 5, 5, 200, 200, 7])
    torch.manual_seed(0)
    q, k, v = (torch.randn(packing.total_tokens, 2, 8) for _ in range(3))
    groups = _global_plan(packing, q.device)
    by_length = {group.length: group for group in groups}
    assert by_length[200].contiguous_from == 160 and by_length[50].contiguous_from == 0
    assert by_length[7].contiguous_from is None  # 7, 5, 5: padded, so gathered
    expected = padded_reference(q, k, v, packing, None, 0.3)
    torch.testing.assert_close(
        global_grouped_attention(q, k, v, packing, 0.3), expected, atol=1e-5, rtol=1e-5
    )
    whole = Packing.from_lengths([33] * 4)
    assert [group.contiguous_from for group in _global_plan(whole, q.device)] == [0]


def test_the_padded_backend_refuses_packed_batches():
    q = k = v = torch.zeros(5, 2, 4)
    with pytest.raises(ValueError, match="backend for padded rows"):
        ATTENTION_BACKENDS[PADDED_ATTENTION](q, k, v, Packing.from_lengths([2, 3]), None, 0.5)
