"""The service's engine: admission control, the tokenization thread, the batcher, timeouts.

Lives on `app.state.engine`. Threads: the event loop (HTTP, JSON), one tokenization thread
(`prepare`, so tokenizing the next request overlaps the model scoring the current batch and
never blocks the event loop), the batch former and the one runner thread that calls the model.

Timeouts: a request not scored within `timeout_s` of its admission is dropped. Whether it is
worth retrying decides the answer: a request that waited behind others gets 503 + Retry-After,
but one that needs more than `timeout_s` of scoring on its own, at the engine's best measured
speed (`ThroughputMeter`), would time out again: it gets 413 naming the limit and what raises
it. Once a speed is measured, such a request is refused before it is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..inference.long_documents import DocumentTooLong, PairScores, PairsJob, Prepared, prepare
from ..scoring import TokenizedPairScorer
from .errors import (
    CannotFinishInTime,
    ClientDisconnected,
    EngineTimeout,
    InvalidRequest,
    Overloaded,
    Unavailable,
)
from .metrics import ServerMetrics
from .scheduler import BatchScheduler, Work
from .settings import ServerSettings

logger = logging.getLogger(__name__)


@dataclass
class ScoredPairs:
    """Raw fp32 scores of a job's pairs, in its order, with what the response reports about them."""

    report: PairScores  # raw fp32 scores (max over windows when chunked), cuts and windows
    prepared: Prepared
    tokenize_s: float
    queue_s: float
    inference_s: float
    total_s: float

    @property
    def scores(self) -> np.ndarray:
        """(pairs,) fp32 raw scores, in the job's order."""
        return self.report.scores


class RerankEngine:
    def __init__(self, scorer: TokenizedPairScorer, settings: ServerSettings, metrics: ServerMetrics):
        self.scorer = scorer
        self.settings = settings
        self.metrics = metrics
        self.batch_tokens = settings.batch_tokens or scorer.default_batch_tokens()
        self.scheduler = BatchScheduler(scorer, self.batch_tokens, settings.max_wait_ms / 1000.0, metrics)
        self._tokenizer_thread: ThreadPoolExecutor | None = None
        self.inflight = 0  # admitted requests; touched only on the event loop
        self.accepting = False
        self.ready = False
        self.shutting_down = False

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """loading (model warming up), ready, or shutting_down."""
        if self.shutting_down:
            return "shutting_down"
        return "ready" if self.ready and self.accepting else "loading"

    def start(self) -> None:
        self.shutting_down = False
        if self._tokenizer_thread is None:
            self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ettin-tokenize")
        self.scheduler.start()
        self.accepting = True

    async def warmup(self) -> None:
        """Score one pair through the whole path, so the first request does not pay for lazy setup."""
        if self.settings.warmup:
            job = PairsJob(["warm up"], ["the engine before the first request"])
            await self.score(job, admit=False)
        self.ready = True
        self.metrics.ready.set(1)

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        self.accepting = False
        self.ready = False
        self.metrics.ready.set(0)

    async def close(self) -> None:
        """Refuse new work, let admitted requests finish (bounded by their timeout), stop the threads."""
        self.begin_shutdown()
        deadline = time.monotonic() + self.settings.timeout_s
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(self.scheduler.stop)
        if self._tokenizer_thread is not None:
            self._tokenizer_thread.shutdown(wait=True, cancel_futures=True)
            self._tokenizer_thread = None

    # -- scoring ------------------------------------------------------------------------------
    async def score(
        self, job: PairsJob, disconnected: Awaitable[object] | None = None, *, admit: bool = True
    ) -> ScoredPairs:
        """Score a job's pairs. Raises Overloaded (429), Unavailable/EngineTimeout (503),
        ClientDisconnected, or the InvalidRequest `prepare` raises."""
        watcher = asyncio.ensure_future(disconnected) if disconnected is not None else None
        try:
            return await self._score(job, watcher, admit)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _score(self, job: PairsJob, watcher: asyncio.Future | None, admit: bool) -> ScoredPairs:
        if admit:
            if not self.accepting:
                self.metrics.rejected.labels("shutting_down").inc()
                raise Unavailable(
                    "the server is shutting down", headers={"Retry-After": str(self.settings.retry_after_s)}
                )
            if self.inflight >= self.settings.queue_size:
                self.metrics.rejected.labels("queue_full").inc()
                raise Overloaded(
                    f"the queue is full ({self.settings.queue_size} requests); retry later",
                    headers={"Retry-After": str(self.settings.retry_after_s)},
                )
        if self._tokenizer_thread is None:
            raise Unavailable(
                "the engine is not started", headers={"Retry-After": str(self.settings.retry_after_s)}
            )
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        deadline = start + self.settings.timeout_s
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        work: Work | None = None
        try:
            prepared_future = loop.run_in_executor(
                self._tokenizer_thread, prepare, self.scorer.tokenizer, job, self.settings.long_document
            )
            try:
                prepared = await self._wait(prepared_future, watcher, deadline)
            except DocumentTooLong as error:
                raise InvalidRequest(str(error), field=error.field) from None
            tokenized = time.monotonic()
            if prepared.truncated.any():
                self.metrics.truncated.inc(int(prepared.truncated.sum()))
            too_much = self._cannot_finish(job, prepared)
            if too_much is not None:
                raise too_much
            work = Work(prepared, loop, loop.create_future())
            self.scheduler.submit(work)
            row_scores = await self._wait(work.future, watcher, deadline)
        except EngineTimeout as timed_out:
            if work is not None:
                work.cancel()
            too_much = self._cannot_finish(job, prepared) if work is not None else None
            if too_much is not None:
                raise too_much from None
            self.metrics.rejected.labels("timeout").inc()
            raise timed_out
        except (ClientDisconnected, asyncio.CancelledError):
            if work is not None:
                work.cancel()
            raise
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)
        done = work.finished_at or time.monotonic()
        began = work.started_at or done
        return ScoredPairs(
            report=prepared.report(row_scores),
            prepared=prepared,
            tokenize_s=tokenized - start,
            queue_s=max(began - tokenized, 0.0),
            inference_s=max(done - began, 0.0),
            total_s=time.monotonic() - start,
        )

    async def _wait(self, future: asyncio.Future, watcher: asyncio.Future | None, deadline: float):
        waiting = {future} if watcher is None else {future, watcher}
        done, _ = await asyncio.wait(
            waiting, timeout=max(deadline - time.monotonic(), 0.0), return_when="FIRST_COMPLETED"
        )
        if future in done:
            return future.result()
        if watcher is not None and watcher in done:
            self.metrics.rejected.labels("client_disconnected").inc()
            raise ClientDisconnected()
        raise EngineTimeout(
            f"the request was not scored within {self.settings.timeout_s:g} s; retry later or send fewer documents",
            headers={"Retry-After": str(self.settings.retry_after_s)},
        )

    def _cannot_finish(self, job: PairsJob, prepared: Prepared) -> CannotFinishInTime | None:
        """The 413 for a job that could not be scored within the timeout even alone on the engine at
        its best measured speed (retrying cannot help); None when it could, or before any speed was
        measured."""
        rate = self.scheduler.throughput.tokens_per_s
        limit = self.settings.timeout_s
        total = int(prepared.tokens.sum())
        if rate is None or total / rate <= limit:
            return None
        self.metrics.rejected.labels("too_much_work").inc()
        fitting_tokens = limit * rate
        speed = f"at the engine's measured {rate:,.0f} tokens/s"
        over = f"over this server's {limit:g} s request timeout; retrying cannot help"
        largest = int(np.argmax(prepared.tokens))
        tokens, windows = int(prepared.tokens[largest]), int(prepared.n_chunks[largest])
        if tokens / rate > limit:  # one document is too much on its own
            field = f"{job.documents_field}[{largest}]"
            fitting_windows = int(fitting_tokens // (tokens / windows))
            remedy = (
                f"send max_chunks_per_doc={fitting_windows} or fewer"
                if prepared.chunked and fitting_windows >= 1
                else "shorten it"
            )
            return CannotFinishInTime(
                f"{field} alone needs {tokens:,} tokens of scoring ({windows} windows), about "
                f"{tokens / rate:.1f} s {speed}, {over}: {remedy}, or raise the server's --timeout",
                field=field,
            )
        fitting_documents = max(int(fitting_tokens // (total / len(job))), 1)
        remedy = f"send fewer {job.documents_field} (about {fitting_documents} fit)"
        if prepared.chunked:
            remedy += ", cap each document's windows with max_chunks_per_doc"
        return CannotFinishInTime(
            f"the request's {len(job)} {job.documents_field} need {total:,} tokens of scoring, about "
            f"{total / rate:.1f} s {speed}, {over}: {remedy}, or raise the server's --timeout",
            field=job.documents_field,
        )
