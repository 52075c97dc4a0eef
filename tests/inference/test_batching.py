"""Token-budget planning, input order restore, streaming with bounded look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.inference.batching import background, iter_pair_batches, plan_batches
from ettin_rerank.inference.tokenization import EncodedPairs


def test_plan_covers_each_pair_once_within_budget_longest_first():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 600, size=500)
    batches = plan_batches(lengths, 2048)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    assert all(lengths[b].sum() <= 2048 for b in batches)
    assert np.all(np.diff(lengths[flat]) <= 0)  # longest first


def test_oversized_pair_gets_its_own_batch():
    batches = plan_batches(np.array([10, 5000, 20]), 100)
    assert [b.tolist() for b in batches] == [[1], [2, 0]]
    assert plan_batches(np.array([], dtype=np.int64), 100) == []
    with pytest.raises(ValueError):
        plan_batches(np.array([1]), 0)


def fake_encoder(calls):
    def encode(pairs):
        calls.append(len(pairs))
        ids = [np.arange(1 + len(q) + len(d), dtype=np.int64) for q, d in pairs]
        return EncodedPairs(ids, None, np.zeros(len(pairs), dtype=bool))

    return encode


def test_streaming_restores_input_order():
    rng = np.random.default_rng(1)
    pairs = [(f"q{i}", "x" * int(rng.integers(1, 300))) for i in range(257)]
    calls = []
    seen = np.full(len(pairs), -1)
    for indices, batch in iter_pair_batches(pairs, fake_encoder(calls), batch_tokens=500, chunk_pairs=50):
        assert batch.num_tokens <= 500 or len(indices) == 1
        # each sequence's length identifies its pair: the scatter puts it back in place
        seen[indices] = np.asarray(batch.packing.seqlens)
    assert np.array_equal(seen, [1 + len(q) + len(d) for q, d in pairs])
    assert max(calls) <= 50 and sum(calls) == len(pairs)


def test_streaming_tokenizes_a_bounded_amount_ahead():
    pairs = [("q", "d" * 50)] * 10_000
    calls = []
    stream = iter_pair_batches(pairs, fake_encoder(calls), batch_tokens=1000, chunk_pairs=100, prefetch=2)
    next(stream)
    import time

    time.sleep(0.2)  # let the producers run as far ahead as they may
    # the chunk being packed, one waiting and one being tokenized: never the whole input
    assert sum(calls) <= 300
    stream.close()


def test_on_a_cpu_batches_are_packed_in_the_scoring_thread_and_tokenized_ahead():
    """Packing runs torch ops, which in a second thread slow the model's own (`packing_prefetch`):
    on a CPU only tokenization, which runs none, is left to a background thread."""
    import threading
    import time

    import torch

    from ettin_rerank.inference.batching import TOKENIZING_THREAD, packing_prefetch

    assert packing_prefetch(torch.device("cpu")) == 0
    encoding_threads = set()

    def encode(pairs):
        encoding_threads.add(threading.current_thread().name)
        return fake_encoder([])(pairs)

    def started_here() -> set[str]:  # threads other tests left behind do not count
        return {thread.name for thread in threading.enumerate() if thread not in before}

    before = set(threading.enumerate())
    pairs = [("q", "d" * 50)] * 1_000
    stream = iter_pair_batches(pairs, encode, batch_tokens=1000, chunk_pairs=100, prefetch=0)
    next(stream)
    time.sleep(0.2)  # the tokenizing thread gets ahead
    assert started_here() == {TOKENIZING_THREAD}
    assert encoding_threads == {TOKENIZING_THREAD}
    stream.close()  # stopping early stops the tokenizing thread too
    deadline = time.monotonic() + 5
    while started_here() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not started_here()


def test_background_reraises_producer_errors():
    def items():
        yield 1
        raise RuntimeError("boom")

    stream = background(items(), prefetch=1)
    assert next(stream) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(stream)


def test_chunks_bound_pairs_and_characters():
    from ettin_rerank.inference.batching import chunk_bounds

    pairs = [("q", "d" * 99)] * 10 + [("q", "d" * 10_000)] + [("q", "")] * 3
    bounds = list(chunk_bounds(pairs, chunk_pairs=4, chunk_chars=350))
    assert bounds[0] == (0, 3) and bounds[-1][1] == len(pairs)
    assert all(b[0] == a[1] for a, b in zip(bounds, bounds[1:], strict=False))
    assert (10, 11) in bounds  # an oversized pair is a chunk of its own
    assert all(end - start <= 4 for start, end in bounds)
