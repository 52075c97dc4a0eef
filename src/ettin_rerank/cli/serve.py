"""`ettin-rerank serve`: the HTTP rerank service (see docs/server.md)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..models import require_model
from .options import (
    add_flag,
    add_loading_options,
    add_model_argument,
    call_with_flags,
    defaults_of,
    extra_needed,
    load_reranker,
)

if TYPE_CHECKING:
    from ..inference.reranker import Reranker
    from ..server.settings import ServerSettings

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
    # every default of the service is a ServerSettings field; its package needs the `server` extra
    from ..server.settings import LONG_DOCUMENT_MODES, ServerSettings

    defaults = defaults_of(ServerSettings)
    add_model_argument(parser, "--model", "-m")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default: %(default)s)")
    add_flag(
        parser, defaults, "--api-key", f"require `Authorization: Bearer KEY` (default: ${API_KEY_ENV} if set)"
    )
    add_loading_options(parser, batch_tokens=False)
    add_flag(parser, defaults, "--max-documents", "documents per request (default: %(default)s)")
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=defaults.max_body_bytes / MIB,
        help="request body limit in MiB (default: %(default)g)",
    )
    add_flag(
        parser,
        defaults,
        "--batch-tokens",
        "real tokens per engine batch (default: the reranker's for its device)",
        type=int,
    )
    add_flag(parser, defaults, "--max-wait-ms", "batching window while idle (default: %(default)g)")
    add_flag(parser, defaults, "--queue-size", "admitted requests before 429 (default: %(default)s)")
    add_flag(
        parser,
        defaults,
        "--timeout",
        "per-request timeout in seconds (default: %(default)g)",
        dest="timeout_s",
        metavar="TIMEOUT",
    )
    add_flag(
        parser,
        defaults,
        "--long-document",
        "default for long documents (default: %(default)s)",
        choices=LONG_DOCUMENT_MODES,
    )
    add_flag(parser, defaults, "--model-name", "the model id reported to clients")
    parser.add_argument("--access-log", action="store_true", help="log every request")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    from ..server.settings import ServerSettings  # the server package needs the `server` extra

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
    scorer = load_scorer(args)
    app = create_app(scorer, settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        log_level="info" if args.verbose else "warning",
        timeout_graceful_shutdown=int(settings.timeout_s) + 5,
    )
    server = graceful_server(config, app)
    print(f"ettin-rerank serving {app.state.model_name} on http://{args.host}:{args.port}", flush=True)
    server.run()
    return 0


def graceful_server(config, app):
    """A uvicorn server that, on SIGINT/SIGTERM, refuses new scoring requests at once (503, /ready
    503), lets in-flight ones finish, then stops (uvicorn closes the listening socket first)."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.engine.begin_shutdown()
            super().handle_exit(sig, frame)

    return GracefulServer(config)
