"""`ettin-rerank serve`: the HTTP rerank service (see docs/server.md)."""

from __future__ import annotations

import argparse
import logging
import os

logger = logging.getLogger(__name__)

API_KEY_ENV = "ETTIN_RERANK_API_KEY"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere, Jina, vLLM and TEI rerank dialects)",
        description="Serve a reranker over HTTP: POST /v2/rerank, /v1/rerank, /rerank, /score; "
        "GET /health, /ready, /metrics, /v1/models, /docs.",
    )
    parser.add_argument(
        "--model",
        help="model directory or Hugging Face Hub id (default: $ETTIN_RERANK_MODEL, then the bundled model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default: %(default)s)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require `Authorization: Bearer KEY` (default: ${API_KEY_ENV} if set)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", help="encoder dtype: float32, bfloat16, float16")
    parser.add_argument(
        "--max-length", type=int, default=None, help="pair token budget (default: the model's)"
    )
    parser.add_argument(
        "--max-documents", type=int, default=10_000, help="documents per request (default: 10000)"
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=50.0, help="request body limit in MiB (default: 50)"
    )
    parser.add_argument("--batch-tokens", type=int, default=None, help="real tokens per engine batch")
    parser.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="batching window while idle (default: 5)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=256, help="admitted requests before 429 (default: 256)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="per-request timeout in seconds (default: 60)"
    )
    parser.add_argument(
        "--long-document",
        choices=("truncate", "chunk"),
        default="truncate",
        help="default for long documents",
    )
    parser.add_argument("--model-name", default=None, help="the model id reported to clients")
    parser.add_argument(
        "--fake", action="store_true", help="serve the deterministic fake scorer (demos, tests)"
    )
    parser.add_argument("--fake-seconds-per-pair", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(handler=run_serve)


def load_scorer(args: argparse.Namespace):
    """The one place the served model is resolved."""
    if args.fake:
        from ..server.fake import FakeScorer

        return FakeScorer(max_length=args.max_length or 512, seconds_per_pair=args.fake_seconds_per_pair)
    from ..inference.reranker import Reranker
    from ..models import require_model

    choice = require_model(args.model)  # --model, then $ETTIN_RERANK_MODEL, then the bundled model
    logger.info("serving %s", choice.describe())
    return Reranker.from_pretrained(
        choice.name_or_path, device=args.device, dtype=args.dtype, max_length=args.max_length
    )


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server import ServerSettings, create_app
    except ImportError as error:
        raise RuntimeError(
            f"serving needs the server extra: pip install 'ettin-rerank[server]' ({error})"
        ) from error

    settings = ServerSettings(
        model_name=args.model_name,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_documents=args.max_documents,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        batch_tokens=args.batch_tokens,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        timeout_s=args.timeout,
        long_document=args.long_document,
    )
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
