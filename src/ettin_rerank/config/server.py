"""Server settings: every limit and default of the service in one typed place."""

from __future__ import annotations

from dataclasses import dataclass

from .loading import LONG_DOCUMENT_MODES


@dataclass(frozen=True)
class ServerSettings:
    served_model_name: str | None = None  # the id in responses and /v1/models; None: default_served_name
    api_key: str | None = None  # when set, every route but /health needs `Authorization: Bearer <key>`
    metrics_public: bool = False  # /metrics answers without the API key (for a scraper without it)
    docs: bool = False  # serve /docs (Swagger UI, whose assets come from a CDN); /openapi.json always
    access_log: bool = False  # log each request: method, path, status, duration
    max_documents: int = 10_000  # documents (or /score pairs) per request; more is a 422
    max_body_bytes: int = 50 * 1024 * 1024  # request bodies above this are a 413
    batch_tokens: int | None = None  # real tokens per engine batch; None: the scorer's default
    max_wait_ms: float = 5.0  # how long a partial batch waits for more pairs while the engine idles
    queue_size: int = 256  # admitted requests (tokenizing, queued or scoring); one more is a 429
    timeout_s: float = 60.0  # per request, from admission to the last score; see server/engine.py
    retry_after_s: int = 1  # the Retry-After header of 429 and 503 answers
    long_document: str = "truncate"  # default for requests without `long_document`: truncate | chunk
    max_chunks_per_doc: int | None = None  # chunk mode: windows scored per document at most; None: all
    warmup: bool = True  # score one pair at startup before /ready says yes

    def __post_init__(self) -> None:
        if self.long_document not in LONG_DOCUMENT_MODES:
            raise ValueError(
                f"long_document must be one of {LONG_DOCUMENT_MODES}, got {self.long_document!r}"
            )
        for name in ("max_documents", "max_body_bytes", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_tokens", "max_chunks_per_doc"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.served_model_name is not None and not self.served_model_name.strip():
            raise ValueError("served_model_name must not be empty")
