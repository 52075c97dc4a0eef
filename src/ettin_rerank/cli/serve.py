"""`ettin-rerank serve`: the HTTP rerank service (see docs/server.md)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
from typing import TYPE_CHECKING

# the service's settings (server/ imports fastapi and torch: imported when the command runs)
from ..config.loading import LONG_DOCUMENT_MODES
from ..config.server import ServerSettings
from ..models import require_model
from .options import (
    Flags,
    add_loading_options,
    add_model_argument,
    call_with_flags,
    defaults_of,
    extra_needed,
    load_reranker,
)

if TYPE_CHECKING:
    from ..inference.reranker import Reranker

API_KEY_ENV = "ETTIN_RERANK_API_KEY"
MIB = 1024 * 1024


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere, Jina, vLLM and TEI rerank dialects)",
        description="Serve a reranker over HTTP: POST /v2/rerank, /v1/rerank, /rerank, /score; "
        "GET /health, /ready, /metrics, /v1/models, /docs.",
        add_arguments=add_arguments,
        needs_extra="server",
    )
    parser.set_defaults(handler=run_serve)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The service's flags; each `ServerSettings` one is named after its field (`--timeout`: timeout_s)."""
    defaults = defaults_of(ServerSettings)  # every default of the service is one of its fields
    flags = Flags(parser, defaults)
    add_model_argument(parser, "--model", "-m")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default: %(default)s)")
    flags.add("--api-key", f"require `Authorization: Bearer KEY` (default: ${API_KEY_ENV} if set)")
    add_loading_options(parser, batch_tokens=False)
    flags.add("--max-documents", "documents per request (default: %(default)s)")
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=defaults.max_body_bytes / MIB,
        help="request body limit in MiB (default: %(default)g)",
    )
    flags.add(
        "--batch-tokens", "real tokens per engine batch (default: the reranker's for its device)", type=int
    )
    flags.add("--max-wait-ms", "batching window while idle (default: %(default)g)")
    flags.add("--queue-size", "admitted requests before 429 (default: %(default)s)")
    flags.add(
        "--timeout",
        "per-request timeout in seconds (default: %(default)g)",
        dest="timeout_s",
        metavar="TIMEOUT",
    )
    flags.add(
        "--long-document", "default for long documents (default: %(default)s)", choices=LONG_DOCUMENT_MODES
    )
    flags.add(
        "--max-chunks-per-doc", "windows scored per document at most when chunking (default: all)", type=int
    )
    flags.add(
        "--served-model-name",
        "the model id in responses and /v1/models (default: the model directory's name, or the Hub id)",
    )
    flags.add(
        "--access-log",
        "log each request (method, path, status, duration) to stderr, without -v",
        action="store_true",
    )
    flags.add(
        "--metrics-public",
        "answer /metrics without the API key (for a Prometheus scraper)",
        action="store_true",
    )
    flags.add(
        "--docs",
        "serve the Swagger UI at /docs (its assets load from a CDN); /openapi.json is always served",
        action="store_true",
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return call_with_flags(
        ServerSettings,
        args,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_body_bytes=int(args.max_body_mb * MIB),
    )


def load_scorer(args: argparse.Namespace) -> Reranker:
    """The served model (tests/server/serve_fake.py puts its fake scorer here)."""
    return load_reranker(require_model(args.model), args)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server import create_app
    except ImportError as error:
        raise RuntimeError(extra_needed("server", error)) from error

    settings = settings_from_args(args)
    if settings.access_log:
        logging.getLogger("ettin_rerank.server.access").setLevel(logging.INFO)
    listener = listening_socket(args.host, args.port)  # before the model loads: a busy port fails fast
    try:
        scorer = load_scorer(args)
        app = create_app(scorer, settings)
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            access_log=False,  # the app's access log (settings.access_log) has the duration too
            log_level="info" if args.verbose else "warning",
            timeout_graceful_shutdown=int(settings.timeout_s) + 5,
        )
        server = graceful_server(config, app)
        port = listener.getsockname()[1]
        print(f"ettin-rerank serving {app.state.model_name} on http://{args.host}:{port}", flush=True)
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (uvicorn listens on it), or an OSError that says, in one line,
    what to do instead."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise OSError(f"cannot resolve --host {host!r}: {error.strerror}") from None
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse a TIME_WAIT port
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} on {host} is in use; pick another with --port") from None
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.set_inheritable(True)
    return listener


def graceful_server(config, app):
    """A uvicorn server that, on SIGINT/SIGTERM, refuses new scoring requests at once (503, /ready
    503), lets in-flight ones finish, then stops (uvicorn closes the listening socket first)."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.engine.begin_shutdown()
            super().handle_exit(sig, frame)

    return GracefulServer(config)
