"""The batcher: token-budget batches formed from the pairs of many concurrent requests.

Two threads, so the engine never waits on Python bookkeeping:

- the former takes rows (encoded pairs) from the queued requests in arrival order and cuts
  them into batches of at most `batch_tokens` real tokens. A request larger than a batch is
  split across batches; a batch holds rows of as many requests as fit. A full batch is formed
  at once, while the engine is still busy with the previous one (one batch waits ready); a
  partial batch waits for more rows until the engine is idle and the oldest queued row has
  waited `max_wait_s`.
- the runner is the one thread that runs the model: `scorer.score_encoded(batch.encoded)`, one
  forward over exactly the batch the former cut (the scorer does not re-plan it), then hands
  every request its own scores and resolves its future when all its rows are scored.

This is the service's one batcher: the scorer never splits, sorts or threads a batch.

Cancelled requests (timeout, client gone) are skipped by the former, and so is a formed batch
whose requests are all cancelled; rows already in a running batch are scored and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..inference.long_documents import Prepared
from ..inference.tokenization import EncodedPairs
from ..scoring import TokenizedPairScorer, checked_scores
from .errors import Unavailable
from .metrics import ServerMetrics

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Work:
    """One request's rows on their way through the batcher."""

    prepared: Prepared
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future  # resolves to (rows,) fp32 raw scores
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None  # first batch with one of its rows began
    finished_at: float | None = None
    cancelled: bool = False
    next_row: int = 0  # rows before this one are in a batch already
    done_rows: int = 0
    row_scores: np.ndarray = field(init=False)
    cumulative: np.ndarray = field(init=False)  # (rows + 1,) token offsets of the rows

    def __post_init__(self) -> None:
        self.row_scores = np.empty(self.prepared.rows, dtype=np.float32)
        self.cumulative = np.concatenate([[0], np.cumsum(self.prepared.encoded.lengths)])

    @property
    def rows(self) -> int:
        return self.prepared.rows

    @property
    def pending_tokens(self) -> int:
        return int(self.cumulative[-1] - self.cumulative[self.next_row])

    def cancel(self) -> None:
        self.cancelled = True  # read by the former under its lock; a stale read costs one batch at most

    def _resolve(self, result: np.ndarray | None, error: BaseException | None) -> None:
        def settle() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(settle)


class ThroughputMeter:
    """How fast the engine scores, in real tokens per second, for deciding whether a request could
    finish within its timeout. Written by the runner thread, read by the event loop.

    `tokens_per_s` is the best of the recent near-full batches: a request larger than a batch is
    scored in full batches, and small ones, dominated by per-batch overhead, would understate the
    speed. Taking the best, a request is refused as too slow to finish only when even that speed
    could not finish it. Before any batch finished, the batch running now bounds the speed from
    above: it has scored its tokens in no less than the time it has been running.
    """

    def __init__(self, min_tokens: int, window: int = 16):
        self.min_tokens = min_tokens
        self._rates: deque[float] = deque(maxlen=window)
        self._running: tuple[int, float] | None = None  # (tokens, start) of the batch being scored
        self._lock = threading.Lock()

    def begin(self, tokens: int) -> None:
        with self._lock:
            self._running = (tokens, time.monotonic())

    def failed(self) -> None:
        """The running batch raised: it measured nothing."""
        with self._lock:
            self._running = None

    def observe(self, tokens: int, seconds: float) -> None:
        with self._lock:
            self._running = None
            if tokens >= self.min_tokens and seconds > 0:
                self._rates.append(tokens / seconds)

    @property
    def tokens_per_s(self) -> float | None:
        """The best measured speed; else the bound from the running batch; None when neither exists."""
        with self._lock:
            if self._rates:
                return max(self._rates)
            if self._running is not None:
                tokens, start = self._running
                elapsed = time.monotonic() - start
                return tokens / elapsed if elapsed > 0 else None
            return None


@dataclass
class Batch:
    parts: list[tuple[Work, int, int]]  # (work, first row, stop row)
    encoded: EncodedPairs
    tokens: int


class BatchScheduler:
    def __init__(
        self,
        scorer: TokenizedPairScorer,
        batch_tokens: int,
        max_wait_s: float,
        metrics: ServerMetrics | None = None,
    ):
        self.scorer = scorer
        self.batch_tokens = batch_tokens
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self.throughput = ThroughputMeter(min_tokens=max(batch_tokens // 2, 1))
        self._lock = threading.Condition()
        self._pending: deque[Work] = deque()
        self._pending_tokens = 0
        self._runner_idle = True
        self._stopping = False
        self._ready: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._threads: list[threading.Thread] = []

    # -- public, called from the event loop ---------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        with self._lock:  # (re)start: an app's lifespan may run more than once in tests
            self._stopping = False
            self._ready = queue.Queue(maxsize=1)
        self._threads = [
            threading.Thread(target=self._form_loop, name="ettin-batch-former", daemon=True),
            threading.Thread(target=self._run_loop, name="ettin-engine", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, work: Work) -> None:
        if work.rows == 0:
            work.finished_at = time.monotonic()
            work._resolve(work.row_scores, None)
            return
        with self._lock:
            if self._stopping:
                raise Unavailable("the server is shutting down")
            self._pending.append(work)
            self._pending_tokens += work.pending_tokens
            self._update_gauges()
            self._lock.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is queued, then stop both threads."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def pending_rows(self) -> int:
        with self._lock:
            return sum(w.rows - w.next_row for w in self._pending)

    # -- the former -----------------------------------------------------------------------
    def _form_loop(self) -> None:
        while True:
            with self._lock:
                while True:
                    self._drop_cancelled()
                    if self._pending_tokens >= self.batch_tokens:
                        break  # a full batch: form it now, even while the engine is busy
                    if self._pending:
                        if self._stopping:
                            break
                        wait = self._pending[0].submitted_at + self.max_wait_s - time.monotonic()
                        engine_free = self._runner_idle and self._ready.empty()
                        if engine_free and wait <= 0:
                            break
                        self._lock.wait(wait if engine_free else None)  # the runner notifies when idle
                    elif self._stopping:
                        break
                    else:
                        self._lock.wait()
                batch = self._take_batch()
                self._update_gauges()
                finished = batch is None and self._stopping and not self._pending
            if batch is not None:
                self._ready.put(batch)  # blocks (outside the lock) while a formed batch waits for the engine
            elif finished:
                self._ready.put(None)  # tells the runner to stop after the batches before it
                return

    def _drop_cancelled(self) -> None:
        while self._pending and self._pending[0].cancelled:
            work = self._pending.popleft()
            self._pending_tokens -= work.pending_tokens
        if any(w.cancelled for w in self._pending):
            kept: deque[Work] = deque()
            for work in self._pending:
                if work.cancelled:
                    self._pending_tokens -= work.pending_tokens
                else:
                    kept.append(work)
            self._pending = kept

    def _take_batch(self) -> Batch | None:
        parts: list[tuple[Work, int, int]] = []
        used = 0
        while self._pending and used < self.batch_tokens:
            work = self._pending[0]
            start = work.next_row
            base = work.cumulative[start]
            # rows whose running total stays within the budget; at least one row per batch
            stop = int(np.searchsorted(work.cumulative, base + (self.batch_tokens - used), side="right")) - 1
            stop = min(max(stop, start + (0 if parts else 1)), work.rows)
            if stop <= start:
                break
            tokens = int(work.cumulative[stop] - base)
            used += tokens
            self._pending_tokens -= tokens
            work.next_row = stop
            parts.append((work, start, stop))
            if stop == work.rows:
                self._pending.popleft()
            else:
                break  # the budget is spent
        if not parts:
            return None
        encoded = EncodedPairs.concatenate([w.prepared.encoded.select(range(a, b)) for w, a, b in parts])
        return Batch(parts, encoded, used)

    # -- the runner -----------------------------------------------------------------------
    def _run_loop(self) -> None:
        while True:
            with self._lock:
                self._runner_idle = True
                self._lock.notify_all()
            batch = self._ready.get()
            if batch is None:
                return
            with self._lock:
                self._runner_idle = False
            self._run(batch)

    def _run(self, batch: Batch) -> None:
        if all(work.cancelled for work, _, _ in batch.parts):
            return  # formed ahead, and every request in it timed out or left while it waited
        started = time.monotonic()
        self.throughput.begin(batch.tokens)
        for work, _, _ in batch.parts:
            if work.started_at is None:
                work.started_at = started
        try:
            scores = checked_scores(
                self.scorer.score_encoded(batch.encoded), len(batch.encoded), self.scorer.name
            )
        except Exception as error:  # the engine failed: fail the requests of this batch, keep serving
            logger.exception("scoring a batch of %d pairs failed", len(batch.encoded))
            self.throughput.failed()
            for work, _, _ in batch.parts:
                work.cancel()
                work._resolve(None, error)
            return
        elapsed = time.monotonic() - started
        self.throughput.observe(batch.tokens, elapsed)
        if self.metrics is not None:
            self.metrics.observe_batch(len(batch.encoded), batch.tokens, elapsed)
        offset = 0
        for work, start, stop in batch.parts:
            n = stop - start
            work.row_scores[start:stop] = scores[offset : offset + n]
            offset += n
            work.done_rows += n
            if work.done_rows == work.rows and not work.cancelled:
                work.finished_at = time.monotonic()
                work._resolve(work.row_scores, None)

    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.queued_tokens.set(self._pending_tokens)
