"""The app factory: `create_app(scorer, settings)`; thin routes over the engine on `app.state`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.types import DecoratedCallable
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..scoring import TokenizedPairScorer
from .engine import RerankEngine
from .errors import ApiError, ClientDisconnected, error_body, error_response, format_location
from .metrics import ServerMetrics
from .middleware import OPEN_PATHS, GuardMiddleware, MetricsMiddleware
from .protocol import (
    CohereRerankRequest,
    CohereRerankResponse,
    ErrorResponse,
    HealthResponse,
    JinaRerankResponse,
    ModelCard,
    ModelList,
    NotReadyResponse,
    ReadyResponse,
    RelevanceScore,
    RerankRequest,
    ScoreRequest,
    ScoreResponse,
    ServerInfo,
    TEIRerankRequest,
    TEIRerankResponse,
    V1RerankRequest,
    timing_headers,
)
from .settings import ServerSettings, default_served_name

logger = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499  # nobody reads it: the client is gone
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": description}
    for code, description in {
        400: "Malformed body (not JSON, not UTF-8)",
        401: "Missing or wrong API key",
        413: "Body over the size limit, or more scoring than the request timeout allows even on an idle "
        "engine (retrying cannot help; `field` names the document or the documents field)",
        422: "A field is missing, of the wrong type, or out of range; `field` names it",
        429: "The queue is full; see Retry-After",
        503: "Not ready, shutting down, or timed out behind other requests; see Retry-After",
    }.items()
}


def create_app(scorer: TokenizedPairScorer, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    metrics = ServerMetrics()
    engine = RerankEngine(scorer, settings, metrics)
    model_name = settings.served_model_name or default_served_name(scorer.name)
    relevance = RelevanceScore.of(scorer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        await engine.warmup()
        logger.info(
            "serving %s (max_length %d, batch_tokens %d, relevance_score: %s)",
            model_name,
            scorer.max_length,
            engine.batch_tokens,
            relevance.describe(),
        )
        try:
            yield
        finally:
            await engine.close()

    app = FastAPI(
        title="ettin-rerank",
        version=__version__,
        description="Cross-encoder reranking that speaks the Cohere, Jina, vLLM and TEI rerank dialects.",
        lifespan=lifespan,
        # Swagger UI loads its script and styles from a CDN, and ReDoc its fonts too: a page that
        # stays blank offline, so /docs is served only when asked for; /openapi.json always is.
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.model_name = model_name
    app.state.relevance = relevance
    app.state.started = int(time.time())
    _add_error_handlers(app)
    app.include_router(router)
    open_paths = OPEN_PATHS | ({"/metrics"} if settings.metrics_public else set())
    app.add_middleware(
        GuardMiddleware,
        api_key=settings.api_key,
        max_body_bytes=settings.max_body_bytes,
        open_paths=open_paths,
    )
    # added last: outermost, sees every answer
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=settings.access_log)
    return app


# -- routes ----------------------------------------------------------------------------------------
router = APIRouter()


def _scoring_route(
    path: str, tag: str, response_model: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """POST `path`, answered with the typed models of protocol.py: `response_model_exclude_none` leaves
    optional fields that do not apply (an un-echoed document, Cohere-only metadata) out of the body."""
    return router.post(
        path, tags=[tag], response_model=response_model, responses=ERRORS, response_model_exclude_none=True
    )


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body was read already, so the next message says so)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _serve(
    request: Request, response: Response, body: RerankRequest | ScoreRequest
) -> CohereRerankResponse | JinaRerankResponse | TEIRerankResponse | ScoreResponse:
    """Every scoring route: the request converts itself to the one job and to how its scores are
    presented; the engine scores the job."""
    engine: RerankEngine = request.app.state.engine
    relevance: RelevanceScore = request.app.state.relevance
    job, view = body.to_job(engine.scorer, engine.settings, relevance)
    scored = await engine.score(job, _disconnected(request))
    response.headers.update(timing_headers(scored))
    return view.respond(scored, request.app.state.model_name, relevance)


@_scoring_route("/v2/rerank", "rerank", CohereRerankResponse)
async def rerank_cohere(request: Request, response: Response, body: CohereRerankRequest) -> Any:
    """Cohere v2 rerank: `{index, relevance_score}` results; documents echoed only on request."""
    return await _serve(request, response, body)


@_scoring_route("/v1/rerank", "rerank", JinaRerankResponse)
async def rerank_jina(request: Request, response: Response, body: V1RerankRequest) -> Any:
    """Jina / vLLM / Cohere v1 / Voyage rerank: `{index, relevance_score, document: {text}}` results."""
    return await _serve(request, response, body)


@_scoring_route("/rerank", "rerank", TEIRerankResponse | JinaRerankResponse)
async def rerank_tei(request: Request, response: Response, body: TEIRerankRequest) -> Any:
    """TEI when the body has `texts` (a bare `[{index, score, text?}]` array); otherwise vLLM (the Jina shape)."""
    return await _serve(request, response, body)


@_scoring_route("/score", "score", ScoreResponse)
async def score(request: Request, response: Response, body: ScoreRequest) -> Any:
    """vLLM pair scoring: one score per (text_1, text_2) pair, in input order."""
    return await _serve(request, response, body)


@_scoring_route("/v1/score", "score", ScoreResponse)
async def score_v1(request: Request, response: Response, body: ScoreRequest) -> Any:
    """vLLM pair scoring (same as /score)."""
    return await _serve(request, response, body)


@router.get("/health", tags=["operations"])
async def health() -> HealthResponse:
    """Liveness: the process answers. Open even when an API key is set."""
    return HealthResponse()


@router.get(
    "/ready",
    tags=["operations"],
    response_model=ReadyResponse,
    responses={503: {"model": NotReadyResponse, "description": "Loading or shutting down"}},
)
async def ready(request: Request) -> Any:
    """Readiness: the model is loaded and warmed, and the server is not shutting down."""
    engine: RerankEngine = request.app.state.engine
    state = engine.state
    if state == "ready":
        return ReadyResponse(model=request.app.state.model_name)
    return JSONResponse(
        {**error_body(f"not ready: {state}", "unavailable"), "status": state}, status_code=503
    )


@router.get("/metrics", tags=["operations"], response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition (open without the API key when served with --metrics-public)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    metrics: ServerMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/models", tags=["operations"])
async def models(request: Request) -> ModelList:
    """OpenAI-style model list: the one model served, and what its default score means."""
    engine: RerankEngine = request.app.state.engine
    card = ModelCard(
        id=request.app.state.model_name,
        created=request.app.state.started,
        owned_by="ettin-rerank",
        max_model_len=engine.scorer.max_length,
        relevance_score=request.app.state.relevance.describe(),
        license=engine.scorer.license,
    )
    return ModelList(data=[card])


@router.get("/info", tags=["operations"])
async def info(request: Request) -> ServerInfo:
    """TEI-style server info."""
    engine: RerankEngine = request.app.state.engine
    return ServerInfo(
        model_id=request.app.state.model_name,
        max_input_length=engine.scorer.max_length,
        max_client_batch_size=engine.settings.max_documents,
        max_batch_tokens=engine.batch_tokens,
        max_concurrent_requests=engine.settings.queue_size,
        version=__version__,
    )


# -- errors ------------------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return error_response(error)

    @app.exception_handler(ClientDisconnected)
    async def client_gone(request: Request, error: ClientDisconnected) -> Response:
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        details = [_describe(e) for e in error.errors()]
        first = (
            details[0] if details else {"field": "body", "message": "invalid request", "type": "validation"}
        )
        status = 400 if first["type"] == "json_invalid" else 422
        kind = "invalid_request" if status == 400 else "validation"
        body = error_body(first["message"], kind, first["field"], details=details)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "invalid_request")
        return JSONResponse(
            error_body(str(error.detail), kind),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:  # a bug, not a client mistake
        if isinstance(error, asyncio.CancelledError):
            raise error
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body("internal server error", "internal"), status_code=500)


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    location = tuple(error.get("loc", ()))
    kind = error.get("type", "validation")
    field = format_location(location)
    if kind == "extra_forbidden":
        message = f"unknown field {location[-1]!r}"
    elif field == "body" and kind in ("missing", "model_attributes_type", "dict_type"):
        message = "the request body must be a JSON object"
    elif kind == "missing":
        message = f"field required: {field}"
    elif kind == "json_invalid":
        field = "body"
        message = f"the request body is not valid JSON: {error.get('ctx', {}).get('error', error.get('msg'))}"
    else:
        message = f"{field}: {error.get('msg', 'invalid value')}"
    return {"field": field, "message": message, "type": kind}
