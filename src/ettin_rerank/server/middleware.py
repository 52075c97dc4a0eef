"""Pure ASGI middleware: bearer auth, body size and UTF-8 limits, request metrics and the access log.

The guard reads the whole body before the route does (FastAPI would anyway), so it can
refuse oversize bodies with 413 and invalid UTF-8 with 400 before any parsing, then replays
the body and passes later `receive` messages (the client's disconnect) through.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import error_body
from .metrics import ServerMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_logger = logging.getLogger("ettin_rerank.server.access")  # the CLI's --access-log shows it

OPEN_PATHS = frozenset({"/health"})  # answered without the API key (and /metrics with --metrics-public)
KNOWN_ROUTES = frozenset(
    {
        "/v2/rerank",
        "/v1/rerank",
        "/rerank",
        "/score",
        "/v1/score",
        "/health",
        "/ready",
        "/metrics",
        "/v1/models",
        "/info",
        "/openapi.json",
        "/docs",
    }
)


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode("utf-8")
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _authorized(headers: dict[bytes, bytes], api_key: bytes) -> bool:
    value = headers.get(b"authorization", b"")
    scheme, _, token = value.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(token.strip(), api_key)


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None,
        max_body_bytes: int,
        open_paths: frozenset[str] | set[str] = OPEN_PATHS,
    ):
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body_bytes = max_body_bytes
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if (
            self.api_key is not None
            and scope["path"] not in self.open_paths
            and not _authorized(headers, self.api_key)
        ):
            await send_json(
                send,
                401,
                error_body(
                    "missing or wrong API key: send `Authorization: Bearer <key>`",
                    "unauthorized",
                    "authorization",
                ),
                {"WWW-Authenticate": "Bearer"},
            )
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            await send_json(
                send,
                400,
                error_body(
                    f"the request body is not valid UTF-8 (byte {error.start})", "invalid_request", "body"
                ),
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, when it comes

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_json(
            send,
            413,
            error_body(
                f"the request body is over the {self.max_body_bytes} byte limit", "payload_too_large", "body"
            ),
            {"Connection": "close"},
        )


class MetricsMiddleware:
    """Counts and times every answer; with `access_log`, logs each one (method, path, status, ms)
    at INFO on `ettin_rerank.server.access` (the CLI shows that logger with --access-log, without -v)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, access_log: bool = False):
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in KNOWN_ROUTES else "other"
        status = 500
        start = time.perf_counter()

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if self.access_log:
                client = scope.get("client") or ("-", 0)
                access_logger.info(
                    "%s:%s %s %s %d %.1f ms",
                    client[0],
                    client[1],
                    scope["method"],
                    scope["path"],
                    status,
                    elapsed * 1000.0,
                )
