"""Server settings: every limit and default of the service in one typed place."""

from __future__ import annotations

from dataclasses import dataclass

LONG_DOCUMENT_MODES = ("truncate", "chunk")


@dataclass(frozen=True)
class ServerSettings:
    model_name: str | None = None  # the id reported as `model`; None: the scorer's name
    api_key: str | None = None  # when set, every route but /health needs `Authorization: Bearer <key>`
    max_documents: int = 10_000  # documents (or /score pairs) per request; more is a 422
    max_body_bytes: int = 50 * 1024 * 1024  # request bodies above this are a 413
    batch_tokens: int | None = None  # real tokens per engine batch; None: the scorer's default
    max_wait_ms: float = 5.0  # how long a partial batch waits for more pairs while the engine idles
    queue_size: int = 256  # admitted requests (tokenizing, queued or scoring); one more is a 429
    timeout_s: float = 60.0  # per request, from admission to the last score; past it a 503
    retry_after_s: int = 1  # the Retry-After header of 429 and 503 answers
    long_document: str = "truncate"  # default for requests without `long_document`: truncate | chunk
    warmup: bool = True  # score one pair at startup before /ready says yes

    def __post_init__(self) -> None:
        if self.long_document not in LONG_DOCUMENT_MODES:
            raise ValueError(
                f"long_document must be one of {LONG_DOCUMENT_MODES}, got {self.long_document!r}"
            )
        for name in ("max_documents", "max_body_bytes", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {self.batch_tokens}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
