"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_PAIR_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BATCH_TOKEN_BUCKETS = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ettin_rerank_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "ettin_rerank_request_seconds", "Request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.inflight = Gauge(
            "ettin_rerank_inflight_requests", "Admitted requests not yet answered", registry=r
        )
        self.queued_tokens = Gauge("ettin_rerank_queued_tokens", "Tokens waiting for a batch", registry=r)
        self.rejected = Counter(
            "ettin_rerank_rejected", "Requests refused or dropped", ["reason"], registry=r
        )
        self.pairs = Counter(
            "ettin_rerank_pairs_scored", "Rows (pairs or windows) scored by the engine", registry=r
        )
        self.tokens = Counter("ettin_rerank_tokens_scored", "Tokens scored by the engine", registry=r)
        self.truncated = Counter(
            "ettin_rerank_truncated_documents", "Documents not scored in full", registry=r
        )
        self.batch_pairs = Histogram(
            "ettin_rerank_batch_pairs", "Rows per engine batch", buckets=BATCH_PAIR_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "ettin_rerank_batch_tokens",
            "Real tokens per engine batch",
            buckets=BATCH_TOKEN_BUCKETS,
            registry=r,
        )
        self.engine_seconds = Counter(
            "ettin_rerank_engine_busy_seconds", "Time the engine spent scoring", registry=r
        )
        self.ready = Gauge("ettin_rerank_ready", "1 once the model is loaded and warmed", registry=r)

    def observe_batch(self, pairs: int, tokens: int, seconds: float) -> None:
        self.pairs.inc(pairs)
        self.tokens.inc(tokens)
        self.batch_pairs.observe(pairs)
        self.batch_tokens.observe(tokens)
        self.engine_seconds.inc(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
