"""The batcher and the engine: cross-request batches, splitting, backpressure, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from ettin_rerank.inference.long_documents import PairsJob
from ettin_rerank.server import ServerSettings
from ettin_rerank.server.engine import RerankEngine
from ettin_rerank.server.errors import (
    CannotFinishInTime,
    ClientDisconnected,
    EngineTimeout,
    Overloaded,
    Unavailable,
)
from ettin_rerank.server.metrics import ServerMetrics

from .conftest import make_client
from .fake_scorer import FakeScorer


def run(scorer, coroutine_fn, **settings):
    async def main():
        engine = RerankEngine(scorer, ServerSettings(warmup=False, **settings), ServerMetrics())
        engine.start()
        try:
            return await coroutine_fn(engine)
        finally:
            await engine.close()

    return asyncio.run(main())


def job(query: str, n: int, tag: str = "") -> PairsJob:
    docs = [
        f"{tag} doc {i} " + ("cats purr " if i % 3 == 0 else "dogs bark ") + "x " * (i % 5) for i in range(n)
    ]
    return PairsJob([query] * n, docs)


def test_concurrent_requests_share_batches_and_get_their_own_scores():
    scorer = FakeScorer(seconds_per_pair=0.001)
    jobs = [job(f"cats purr {k}", 5 + k, tag=f"r{k}") for k in range(8)]

    async def go(engine):
        return await asyncio.gather(*(engine.score(j) for j in jobs))

    results = run(scorer, go, max_wait_ms=50)
    assert sum(scorer.batches) == sum(len(j) for j in jobs)  # nothing lost or duplicated
    assert len(scorer.batches) < len(jobs) and max(scorer.batches) > max(len(j) for j in jobs)  # merged
    for j, result in zip(jobs, results, strict=True):
        expected = scorer.score_pairs(list(zip(j.queries, j.documents, strict=True)))
        np.testing.assert_array_equal(result.scores, expected)  # each request its own scores


def test_a_large_request_is_split_into_token_budget_batches():
    scorer = FakeScorer()
    big = job("cats purr", 500)
    result = run(scorer, lambda engine: engine.score(big), batch_tokens=64)
    assert len(scorer.batches) > 10 and sum(scorer.batches) == 500
    lengths = scorer.encode(list(zip(big.queries, big.documents, strict=True))).lengths
    assert max(scorer.batches) <= 64 // lengths.min()
    np.testing.assert_array_equal(
        result.scores, scorer.score_pairs(list(zip(big.queries, big.documents, strict=True)))
    )


def test_a_full_queue_refuses_with_429():
    scorer = FakeScorer(seconds_per_pair=0.02)

    async def go(engine):
        first = asyncio.ensure_future(engine.score(job("q", 10)))
        second = asyncio.ensure_future(engine.score(job("q", 10)))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await engine.score(job("q", 1))
        assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "1"
        await asyncio.gather(first, second)
        return await engine.score(job("q", 1))  # room again

    assert run(scorer, go, queue_size=2).scores.shape == (1,)


def test_a_request_queued_behind_others_times_out_with_503_and_its_work_is_dropped():
    """Alone it would finish in time (retrying helps): 503 + Retry-After."""
    scorer = FakeScorer(seconds_per_pair=0.02)

    async def go(engine):
        first = asyncio.ensure_future(engine.score(job("q", 15, "first")))  # 0.3 s of compute
        await asyncio.sleep(0.01)
        with pytest.raises(EngineTimeout) as timed_out:
            await engine.score(job("q", 15, "second"))  # 0.3 s more, behind the first
        assert timed_out.value.status_code == 503 and "Retry-After" in timed_out.value.headers
        await first
        await asyncio.sleep(0.2)

    run(scorer, go, timeout_s=0.45, batch_tokens=40)
    assert sum(scorer.batches) < 30  # the rest of the second request was never scored


def test_a_request_too_large_for_the_timeout_is_a_413_then_refused_before_queueing():
    """Alone it needs 2 s of compute against a 0.3 s timeout: retrying cannot help."""
    scorer = FakeScorer(seconds_per_pair=0.05)

    async def go(engine):
        with pytest.raises(CannotFinishInTime) as too_much:  # no speed measured yet: at the timeout
            await engine.score(job("q", 40))
        assert too_much.value.status_code == 413 and "Retry-After" not in too_much.value.headers
        assert too_much.value.field == "documents"
        assert "--timeout" in too_much.value.message and "send fewer documents" in too_much.value.message
        await asyncio.sleep(0.3)
        scored = sum(scorer.batches)
        started = time.monotonic()
        with pytest.raises(CannotFinishInTime):  # the speed is known now: refused before queueing
            await engine.score(job("q", 40, "again"))
        assert time.monotonic() - started < 0.1 and sum(scorer.batches) == scored
        return await engine.score(job("q", 3))  # a request that fits is still served

    assert run(scorer, go, timeout_s=0.3, batch_tokens=40).scores.shape == (3,)
    assert sum(scorer.batches) < 40 + 3  # the refused request's remaining rows were never scored


def test_before_any_batch_finished_the_running_batch_bounds_the_speed():
    """Three batches of 0.5 s each against a 0.3 s timeout: the first has not finished at the
    timeout, yet the time it has run already proves the request cannot finish."""
    scorer = FakeScorer(seconds_per_pair=0.05)

    async def go(engine):
        with pytest.raises(CannotFinishInTime) as too_much:
            await engine.score(job("q", 30))
        assert engine.scheduler.throughput.tokens_per_s is not None
        return too_much.value

    refused = run(scorer, go, timeout_s=0.3, batch_tokens=100)
    assert refused.status_code == 413 and refused.field == "documents"
    assert len(scorer.batches) == 1  # the first batch ran; the one formed ahead was skipped


def test_a_disconnected_client_cancels_its_queued_work():
    scorer = FakeScorer(seconds_per_pair=0.01)

    async def go(engine):
        busy = asyncio.ensure_future(engine.score(job("q", 30, "first")))
        await asyncio.sleep(0.02)
        with pytest.raises(ClientDisconnected):
            await engine.score(job("q", 30, "second"), asyncio.sleep(0.05))  # the client leaves after 50 ms
        await busy

    run(scorer, go, batch_tokens=60)
    assert sum(scorer.batches) < 60  # the second request's queued rows were skipped


def test_shutdown_finishes_admitted_requests_and_refuses_new_ones():
    scorer = FakeScorer(seconds_per_pair=0.005)

    async def go(engine):
        inflight = asyncio.ensure_future(engine.score(job("q", 40)))
        await asyncio.sleep(0.02)
        closing = asyncio.ensure_future(engine.close())
        await asyncio.sleep(0)
        assert engine.state == "shutting_down"
        with pytest.raises(Unavailable):
            await engine.score(job("q", 1))
        result = await inflight
        await closing
        return result

    assert run(scorer, go).scores.shape == (40,)


def test_http_backpressure_and_timeout_answers():
    scorer = FakeScorer(seconds_per_pair=0.05)
    with make_client(scorer, queue_size=1, timeout_s=0.5) as client:
        slow = {"query": "q", "documents": ["d"] * 20}  # 1 s of fake compute
        answers = {}
        thread = threading.Thread(
            target=lambda: answers.setdefault("slow", client.post("/v2/rerank", json=slow))
        )
        thread.start()
        for _ in range(100):  # until the slow request is admitted
            if client.app.state.engine.inflight:
                break
            threading.Event().wait(0.01)
        refused = client.post("/v2/rerank", json={"query": "q", "documents": ["d"]})
        thread.join()
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error_type"] == "overloaded"
        assert answers["slow"].status_code == 503 and answers["slow"].headers["retry-after"] == "1"
        assert answers["slow"].json()["error_type"] == "timeout"
        metrics = client.get("/metrics").text
        assert 'ettin_rerank_rejected_total{reason="queue_full"} 1.0' in metrics


class RecordingScorer:
    """A real reranker that records each `score_encoded` call: its thread, rows and tokens."""

    def __init__(self, reranker):
        self.reranker = reranker
        self.calls: list[tuple[str, int, int]] = []

    def __getattr__(self, name):
        return getattr(self.reranker, name)

    def score_encoded(self, encoded):
        self.calls.append((threading.current_thread().name, len(encoded), int(encoded.lengths.sum())))
        return self.reranker.score_encoded(encoded)


def test_each_batch_is_one_forward_in_the_runner_thread(tiny_reranker):
    """The scheduler is the one batcher: the scorer gets exactly its batches and runs each as one forward."""
    scorer = RecordingScorer(tiny_reranker)
    forwards = []
    hook = tiny_reranker.model.register_forward_hook(lambda *_: forwards.append(1))
    jobs = [job(f"cats purr {k}", 20 + k, tag=f"r{k}") for k in range(3)]

    async def go(engine):
        return await asyncio.gather(*(engine.score(j) for j in jobs))

    try:
        results = run(scorer, go, batch_tokens=256, max_wait_ms=20)
    finally:
        hook.remove()
    assert len(scorer.calls) > 1 and len(forwards) == len(scorer.calls)
    assert {thread for thread, _, _ in scorer.calls} == {"ettin-engine"}
    assert all(tokens <= 256 for _, _, tokens in scorer.calls)
    assert sum(rows for _, rows, _ in scorer.calls) == sum(len(j) for j in jobs)
    for j, result in zip(jobs, results, strict=True):
        expected = tiny_reranker.predict(list(zip(j.queries, j.documents, strict=True)))
        np.testing.assert_allclose(result.scores, expected, rtol=1e-4, atol=1e-5)
