"""The HTTP dialects: request models that convert themselves to internal jobs, and response models.

Each scoring route has its own request model, holding exactly the fields of the dialects that
route serves (see docs/server.md), so its OpenAPI schema advertises nothing else and any other
field is refused. They share one base: vLLM's fields (vLLM serves every route), the server's
`long_document`, and the one conversion (`to_job`), the only place where client fields become
engine options. `rerank_response` / `score_response` are the only place responses are shaped:
they build the typed models the routes return, so the OpenAPI document describes exactly what is
sent (optional fields that are `None` are left out of the body).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema

from ..inference.calibration import Calibration
from ..inference.long_documents import PairsJob, TruncationOptions
from ..inference.scores import apply_activation, probability_activation, ranked_results
from ..scoring import TokenizedPairScorer
from .engine import ScoredPairs
from .errors import InvalidRequest
from .settings import ServerSettings


class Dialect(StrEnum):
    """The response shape a rerank request is answered with."""

    COHERE = "cohere"  # POST /v2/rerank
    JINA = "jina"  # POST /v1/rerank, and /rerank with `documents` (Jina and vLLM share the shape)
    TEI = "tei"  # POST /rerank with `texts`


# One concept's names across the dialects: a route's model has some of them, a request gives at
# most one (an error names the second one given).
DOCUMENT_FIELDS = ("documents", "texts", "input")
TOP_N_FIELDS = ("top_n", "top_k")
ECHO_FIELDS = ("return_documents", "return_text", "return_input")
ALLOW_TRUNCATION_FIELDS = ("truncate", "truncation")
SIDE_FIELDS = ("truncation_direction", "truncation_side")

# Documents arrive as strings or objects; converted at the boundary so the error can name the
# exact item. An object is scored by its "text", or, with `rank_fields`, by the named fields.
TEXT_ITEM_SCHEMA = {
    "anyOf": [
        {"type": "string"},
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ]
}
DOCUMENT_SCHEMA = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "description": 'Scored by its "text", or by the fields `rank_fields` names (strings or numbers).',
        },
    ]
}
DocumentItem = Annotated[Any, WithJsonSchema(DOCUMENT_SCHEMA)]
# vLLM /score sides: a string or a non-empty list; converted at the boundary like documents.
TextOrTexts = Annotated[
    Any,
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": TEXT_ITEM_SCHEMA, "minItems": 1}]}
    ),
]
RankFields = Annotated[list[Annotated[str, Field(strict=True, min_length=1)]], Field(min_length=1)]
DocumentList = Annotated[list[DocumentItem], Field(min_length=1)]
Side = Literal["left", "right", "Left", "Right"]
StrictBool = Annotated[bool, Field(strict=True)]
StrictStr = Annotated[str, Field(strict=True)]


# Strict integers (a JSON string or float is refused) by range; named so type checkers read them as types.
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
TokenBudget = Annotated[int, Field(strict=True, ge=-1)]  # -1: the model max
Int32 = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31)]


def _documents_required(schema: dict[str, Any]) -> None:
    """The OpenAPI schema requires the documents under one of the names the route's model has (the
    model leaves them optional so that `to_job` can name the one missing, or the one given twice)."""
    names = [name for name in DOCUMENT_FIELDS if name in schema.get("properties", {})]
    if len(names) == 1:
        schema.setdefault("required", []).append(names[0])
    else:
        schema["oneOf"] = [{"required": [name]} for name in names]


class PoolingRequest(BaseModel):
    """What every scoring route takes: vLLM's own fields (vLLM serves /rerank, /v1/rerank,
    /v2/rerank and /score, with these in each request) and the server's `long_document`.
    Unknown fields are refused. The helpers read a field by name, so a field the route's model
    lacks reads as not given (pydantic has already refused it)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = Field(None, description="Accepted and ignored: the server serves one model.")
    use_activation: StrictBool | None = Field(
        None,
        description="vLLM: false returns raw logits, true the sigmoid (default: the server's relevance score).",
    )
    truncate_prompt_tokens: TokenBudget | None = Field(
        None, description="vLLM: pair budget; -1: the model max."
    )
    truncation_side: Side | None = Field(None, description="vLLM: which end of a long document is cut.")
    long_document: Literal["truncate", "chunk"] | None = Field(
        None, description="Override the server default."
    )
    user: StrictStr | None = Field(None, description="Accepted and ignored (OpenAI-style clients).")
    request_id: StrictStr | None = Field(None, description="Accepted and ignored (vLLM).")
    priority: Int32 | None = Field(None, description="Accepted and ignored (vLLM, Cohere v2).")

    def _value(self, name: str) -> Any:
        return getattr(self, name, None)

    def _one_of(self, names: tuple[str, ...]) -> tuple[str | None, Any]:
        """The one field of `names` given, as (name, value); (None, None) when none is."""
        given = [(name, value) for name in names if (value := self._value(name)) is not None]
        if len(given) > 1:
            raise InvalidRequest(f"give only one of {', '.join(n for n, _ in given)}", field=given[1][0])
        return given[0] if given else (None, None)

    def _required_one_of(self, names: tuple[str, ...]) -> tuple[str, Any]:
        """The one field of `names` given, as (name, value); an error naming them when none is."""
        name, value = self._one_of(names)
        if name is None:
            known = [n for n in names if n in type(self).model_fields]
            alternatives = f" (or {', '.join(known[1:])})" if len(known) > 1 else ""
            raise InvalidRequest(f"field required: {known[0]}{alternatives}", field=known[0])
        return name, value

    def _activation(self, relevance: RelevanceScore) -> str | None:
        return _activation(self._value("raw_scores"), self.use_activation, relevance.default_activation)

    def _truncation(self, scorer: TokenizedPairScorer, settings: ServerSettings) -> TruncationOptions:
        long_document, max_chunks = _chunking(self.long_document, self._value("max_chunks_per_doc"), settings)
        _, side = self._one_of(SIDE_FIELDS)
        _, allow = self._one_of(ALLOW_TRUNCATION_FIELDS)
        return TruncationOptions(
            max_length=_pair_budget(self.truncate_prompt_tokens, scorer),
            max_tokens_per_doc=self._value("max_tokens_per_doc"),
            max_tokens_per_query=self._value("max_tokens_per_query"),
            side=(side or "right").lower(),
            allow=allow is not False,
            long_document=long_document,
            max_chunks_per_doc=max_chunks,
        )


class RerankRequest(PoolingRequest):
    """vLLM's rerank request: rerank `documents` against `query`. Every rerank route takes these
    fields; each route's model adds those of the other dialects it serves."""

    model_config = ConfigDict(json_schema_extra=_documents_required)

    query: StrictStr = Field(min_length=1, description="The search query; must not be empty.")
    documents: DocumentList | None = Field(None, description="Strings or {text} objects.")
    top_n: NonNegativeInt | None = Field(None, description="Results to return; 0 or absent: all.")
    max_tokens_per_doc: PositiveInt | None = Field(
        None, description="Cohere, vLLM: cut each document to this many tokens."
    )
    max_tokens_per_query: PositiveInt | None = Field(
        None, description="vLLM: cut the query to this many tokens."
    )

    def response_dialect(self) -> Dialect:
        return Dialect.JINA  # vLLM answers in Jina's shape

    def to_job(
        self, scorer: TokenizedPairScorer, settings: ServerSettings, relevance: RelevanceScore
    ) -> tuple[PairsJob, RerankView]:
        if not self.query.strip():
            raise InvalidRequest("query must not be empty", field="query")
        field, items = self._required_one_of(DOCUMENT_FIELDS)
        rank_fields = self._value("rank_fields")
        _check_rank_fields(rank_fields)
        documents = _documents(items, field, rank_fields)
        _check_count(len(documents), field, settings)
        dialect = self.response_dialect()
        _, top_n = self._one_of(TOP_N_FIELDS)
        _, echo = self._one_of(ECHO_FIELDS)
        if echo is None:
            echo = dialect == Dialect.JINA  # Jina and vLLM echo by default; Cohere v2 and TEI do not
        truncation = self._truncation(scorer, settings)
        job = PairsJob([self.query] * len(documents), documents, truncation, documents_field=field)
        view = RerankView(
            dialect=dialect,
            documents=documents,
            top_n=top_n or None,
            return_documents=echo,
            activation=self._activation(relevance),
        )
        return job, view


class CohereDocumentOptions(BaseModel):
    """Cohere's fields beyond vLLM's: Cohere v1 has them, and so had the first v2 API (clients
    written for it still send them). `return_documents` is also Jina's and Voyage's name."""

    return_documents: StrictBool | None = Field(None, description="Echo each document's text.")
    rank_fields: RankFields | None = Field(
        None,
        description="Cohere v1: score object documents by these fields, joined as `field: value` lines.",
    )
    max_chunks_per_doc: PositiveInt | None = Field(
        None,
        description="Cohere v1: score at most this many windows per document (their first); implies chunk.",
    )


class CohereRerankRequest(RerankRequest, CohereDocumentOptions):
    """POST /v2/rerank: Cohere v2, and vLLM (which serves /v2/rerank too)."""

    def response_dialect(self) -> Dialect:
        return Dialect.COHERE


class V1RerankRequest(RerankRequest, CohereDocumentOptions):
    """POST /v1/rerank: Jina, vLLM, Cohere v1 and Voyage all post here; so do Mixedbread clients
    (`input`, `top_k`, `return_input`). Answered in Jina's shape."""

    input: DocumentList | None = Field(None, description="Mixedbread's name for the documents.")
    top_k: NonNegativeInt | None = Field(None, description="Voyage's and Mixedbread's name for top_n.")
    return_input: StrictBool | None = Field(None, description="Mixedbread's name for return_documents.")
    truncation: StrictBool | None = Field(
        None, description="Voyage: false refuses pairs over the max length."
    )


class TEIRerankRequest(RerankRequest):
    """POST /rerank: TEI (`texts`, answered with TEI's bare array) and vLLM (`documents`, answered
    in Jina's shape), the two servers whose clients post to this path."""

    texts: DocumentList | None = Field(None, description="TEI's name for the documents.")
    raw_scores: StrictBool | None = Field(
        None,
        description="TEI: true returns raw logits, false the sigmoid (default: the server's relevance score).",
    )
    return_text: StrictBool | None = Field(None, description="TEI: echo each document's text.")
    truncate: StrictBool | None = Field(None, description="TEI: false refuses pairs over the max length.")
    truncation_direction: Side | None = Field(None, description="TEI's name for truncation_side.")

    def response_dialect(self) -> Dialect:
        return Dialect.TEI if self.texts is not None else super().response_dialect()


class ScoreRequest(PoolingRequest):
    """vLLM pair scoring: `text_1` against `text_2`, 1-to-N or N-to-N, answered in input order."""

    text_1: TextOrTexts = Field(description="A query, or a list of 1 or N queries.")
    text_2: TextOrTexts = Field(description="A document, or a list of N documents.")

    def to_job(
        self, scorer: TokenizedPairScorer, settings: ServerSettings, relevance: RelevanceScore
    ) -> tuple[PairsJob, ScoreView]:
        """The job, and how its scores are presented (the activation they get)."""
        left, right = _texts(self.text_1, "text_1"), _texts(self.text_2, "text_2")
        if not left:
            raise InvalidRequest("text_1 must not be empty", field="text_1")
        _check_count(len(right), "text_2", settings)
        if len(left) == 1:
            left = left * len(right)
        elif len(left) != len(right):
            raise InvalidRequest(
                f"text_1 has {len(left)} items and text_2 {len(right)}: give one text_1 or as many as text_2",
                field="text_1",
            )
        for i, query in enumerate(left):
            if not query.strip():
                raise InvalidRequest(
                    "queries must not be empty", field="text_1" if len(set(left)) == 1 else f"text_1[{i}]"
                )
        job = PairsJob(left, right, self._truncation(scorer, settings), documents_field="text_2")
        return job, ScoreView(self._activation(relevance))


# -- response models: what the routes return (None fields are omitted from the body) -------------
class DocumentText(BaseModel):
    text: str


class ResultMeta(BaseModel):
    index: int
    tokens: int = Field(description="Tokens scored for this document, query and special tokens included.")
    truncated: bool = Field(description="Some of the document (or query) was not scored.")
    document_tokens: int | None = Field(
        None, description="The document's own tokens, when truncated or chunked."
    )
    n_chunks: int | None = Field(
        None, description="Windows scored (long_document=chunk); the score is their max."
    )


class Usage(BaseModel):
    total_tokens: int
    prompt_tokens: int


class RerankResult(BaseModel):
    index: int = Field(description="The document's position in the request.")
    relevance_score: float
    document: DocumentText | None = Field(None, description="The document, when echoed.")


class RerankMeta(BaseModel):
    results: list[ResultMeta] = Field(description="One entry per result, in the same order.")
    truncated_documents: int


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int = Field(description="ceil(documents / 100)")


class TokenCounts(BaseModel):
    input_tokens: int
    output_tokens: int


class CohereRerankMeta(RerankMeta):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: TokenCounts


class CohereRerankResponse(BaseModel):
    """Cohere v2 (POST /v2/rerank)."""

    id: str
    results: list[RerankResult]
    usage: Usage
    meta: CohereRerankMeta


class JinaRerankResponse(BaseModel):
    """Jina / vLLM (POST /v1/rerank, and /rerank without `texts`)."""

    id: str
    results: list[RerankResult]
    usage: Usage
    model: str
    meta: RerankMeta


class TEIRankItem(BaseModel):
    index: int
    score: float
    text: str | None = Field(None, description="The document, when return_text is on.")


class TEIRerankResponse(RootModel[list[TEIRankItem]]):
    """TEI (POST /rerank with `texts`): a bare array, ranked."""


class ScoreItem(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float


class ScoreResponse(BaseModel):
    """vLLM pair scoring (POST /score, /v1/score): one item per pair, in input order."""

    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreItem]
    usage: Usage
    meta: RerankMeta


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    model: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    max_model_len: int
    relevance_score: str = Field(
        description='What a default score is: "sigmoid" (of the raw logit), or "calibrated (METHOD, fitted '
        "on DATASET SPLIT)\", the probability of relevance from the model's calibration.json."
    )
    license: str | None = Field(
        default=None, description="The licence the model's card declares (absent when it states none)."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ServerInfo(BaseModel):
    """TEI's /info."""

    model_id: str
    model_type: Literal["reranker"] = "reranker"
    max_input_length: int
    max_client_batch_size: int
    max_batch_tokens: int
    max_concurrent_requests: int
    version: str


class ErrorDetail(BaseModel):
    field: str
    message: str
    type: str


class ErrorResponse(BaseModel):
    """Every error body (built by `errors.error_body`, which keeps `field: null`)."""

    error: str
    error_type: str
    message: str
    field: str | None
    details: list[ErrorDetail] | None = Field(None, description="Validation errors: every problem found.")


class NotReadyResponse(ErrorResponse):
    status: str = Field(description="loading or shutting_down")


# -- what a score means -------------------------------------------------------------------------
@dataclass(frozen=True)
class RelevanceScore:
    """The default score of every route (a request that asks neither for raw logits nor for the
    sigmoid): the model's calibrated probability of relevance when it has a calibration, else the
    sigmoid of the raw logit, which is not a probability. Decided once per app."""

    calibration: Calibration | None

    @classmethod
    def of(cls, scorer: TokenizedPairScorer) -> RelevanceScore:
        return cls(scorer.calibration)

    @property
    def default_activation(self) -> str:
        return probability_activation(self.calibration)

    def describe(self) -> str:
        """For /v1/models: "sigmoid", or "calibrated (platt, fitted on scifact train)"."""
        if self.calibration is None:
            return "sigmoid"
        fitted_on = self.calibration.fitted_on
        source = " ".join(str(fitted_on[key]) for key in ("dataset", "split") if fitted_on.get(key))
        return f"calibrated ({self.calibration.method}{', fitted on ' + source if source else ''})"

    def apply(self, raw: np.ndarray, activation: str | None) -> np.ndarray:
        return apply_activation(raw, activation, self.calibration)


# -- the boundary: client fields -> engine job ---------------------------------------------------
@dataclass
class RerankView:
    """How to present a job's scores: what the response needs besides the scores."""

    dialect: Dialect
    documents: list[str]
    top_n: int | None
    return_documents: bool
    activation: str | None

    def respond(
        self, scored: ScoredPairs, model_name: str, relevance: RelevanceScore
    ) -> CohereRerankResponse | JinaRerankResponse | TEIRerankResponse:
        return rerank_response(self, scored, model_name, relevance)


@dataclass(frozen=True)
class ScoreView:
    """How to present a pair-scoring job's scores: the activation they get."""

    activation: str | None

    def respond(self, scored: ScoredPairs, model_name: str, relevance: RelevanceScore) -> ScoreResponse:
        return score_response(scored, self.activation, model_name, relevance)


def _documents(items: list[Any], field: str, rank_fields: list[str] | None = None) -> list[str]:
    if rank_fields is not None:
        return [_ranked_text(item, f"{field}[{i}]", rank_fields) for i, item in enumerate(items)]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            out.append(item["text"])
        elif isinstance(item, dict):
            raise InvalidRequest(
                f'{field}[{i}] must have a string "text" (or name the fields to score with rank_fields)',
                field=f"{field}[{i}].text",
            )
        else:
            raise InvalidRequest(
                f'{field}[{i}] must be a string or an object with a string "text", got {type(item).__name__}',
                field=f"{field}[{i}]",
            )
    return out


def _ranked_text(item: Any, name: str, rank_fields: list[str]) -> str:
    """Cohere v1's structured documents: the `rank_fields` of an object, one `field: value` line
    each, in the order rank_fields gives them. A string document is the object {"text": it}."""
    record = {"text": item} if isinstance(item, str) else item
    if not isinstance(record, dict):
        raise InvalidRequest(f"{name} must be a string or an object, got {type(item).__name__}", field=name)
    lines = []
    for key in rank_fields:
        if key not in record:
            raise InvalidRequest(
                f"{name} has no field {key!r}, which rank_fields names", field=f"{name}.{key}"
            )
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRequest(
                f"{name}.{key} must be a string or a number to be scored, got {type(value).__name__}",
                field=f"{name}.{key}",
            )
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _check_rank_fields(rank_fields: list[str] | None) -> None:
    if rank_fields is not None and len(set(rank_fields)) != len(rank_fields):
        raise InvalidRequest("rank_fields must not repeat a field", field="rank_fields")


def _texts(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return _documents(value, field)
    raise InvalidRequest(
        f"{field} must be a string or a list of strings, got {type(value).__name__}", field=field
    )


def _activation(raw_scores: bool | None, use_activation: bool | None, default: str) -> str | None:
    """None (raw logits), "sigmoid" when the client asks for the activation by its dialect's flag
    (TEI raw_scores=false, vLLM use_activation=true: the sigmoid, as those servers mean it), or
    `default` (the server's relevance score) when it asks for neither."""
    if raw_scores is not None and use_activation is not None and raw_scores == use_activation:
        raise InvalidRequest("raw_scores and use_activation contradict each other", field="use_activation")
    if raw_scores is None and use_activation is None:
        return default
    raw = raw_scores if raw_scores is not None else not use_activation
    return None if raw else "sigmoid"


def _chunking(
    long_document: str | None, max_chunks_per_doc: int | None, settings: ServerSettings
) -> tuple[str | None, int | None]:
    """The request's long-document mode and window cap. Cohere v1 chunks long documents and
    `max_chunks_per_doc` caps the windows, so the field asks for chunking; the server's own cap
    (--max-chunks-per-doc) bounds every chunked request."""
    if max_chunks_per_doc is not None:
        if long_document == "truncate":
            raise InvalidRequest(
                "max_chunks_per_doc caps the windows of long_document=chunk; drop it or long_document=truncate",
                field="max_chunks_per_doc",
            )
        long_document = "chunk"
    caps = [cap for cap in (max_chunks_per_doc, settings.max_chunks_per_doc) if cap is not None]
    return long_document, min(caps, default=None)


def _pair_budget(truncate_prompt_tokens: int | None, scorer: TokenizedPairScorer) -> int | None:
    if truncate_prompt_tokens in (None, -1):
        return None
    lowest = scorer.tokenizer.num_special_tokens + 2
    if not lowest <= truncate_prompt_tokens <= scorer.max_length:
        raise InvalidRequest(
            f"truncate_prompt_tokens must be -1 or between {lowest} and the model's {scorer.max_length}, "
            f"got {truncate_prompt_tokens}",
            field="truncate_prompt_tokens",
        )
    return truncate_prompt_tokens


def _check_count(n: int, field: str, settings: ServerSettings) -> None:
    if n == 0:
        raise InvalidRequest(f"{field} must not be empty: give at least one document", field=field)
    if n > settings.max_documents:
        raise InvalidRequest(
            f"{field} has {n} items; this server accepts at most {settings.max_documents} per request",
            field=field,
        )


# -- responses -----------------------------------------------------------------------------------
def _meta_results(scored: ScoredPairs, indices: list[int]) -> list[ResultMeta]:
    prepared = scored.prepared
    tokens, truncated, n_chunks = (
        a.tolist() for a in (prepared.tokens, prepared.truncated, prepared.n_chunks)
    )
    return [
        ResultMeta(
            index=index,
            tokens=tokens[index],
            truncated=truncated[index],
            document_tokens=prepared.document_tokens.get(index),
            n_chunks=n_chunks[index] if prepared.chunked else None,
        )
        for index in indices
    ]


def _usage(scored: ScoredPairs) -> Usage:
    total = int(scored.prepared.tokens.sum())
    return Usage(total_tokens=total, prompt_tokens=total)


def timing_headers(scored: ScoredPairs) -> dict[str, str]:
    """TEI's timing headers, on every scoring response."""

    def ms(seconds: float) -> str:
        return str(round(seconds * 1000.0, 3))

    return {
        "x-total-time": ms(scored.total_s),
        "x-tokenization-time": ms(scored.tokenize_s),
        "x-queue-time": ms(scored.queue_s),
        "x-inference-time": ms(scored.inference_s),
        "x-compute-tokens": str(int(scored.prepared.tokens.sum())),
        "x-truncated-documents": str(int(scored.prepared.truncated.sum())),
    }


def rerank_response(
    view: RerankView, scored: ScoredPairs, model_name: str, relevance: RelevanceScore
) -> CohereRerankResponse | JinaRerankResponse | TEIRerankResponse:
    scores = relevance.apply(scored.scores, view.activation)
    shown = view.documents if view.return_documents else None
    # ranked by the raw scores: an activation that saturates or is flat in places (isotonic) would
    # otherwise tie documents the model told apart
    ranked = ranked_results(scores, shown, view.top_n, raw_scores=scored.scores)
    if view.dialect == Dialect.TEI:
        return TEIRerankResponse(
            [TEIRankItem(index=r["index"], score=r["score"], text=r.get("document")) for r in ranked]
        )
    results = [
        RerankResult(
            index=r["index"],
            relevance_score=r["score"],
            document=DocumentText(text=r["document"]) if view.return_documents else None,
        )
        for r in ranked
    ]
    usage = _usage(scored)
    meta_results = _meta_results(scored, [r["index"] for r in ranked])
    truncated = int(scored.prepared.truncated.sum())
    if view.dialect == Dialect.COHERE:
        meta = CohereRerankMeta(
            results=meta_results,
            truncated_documents=truncated,
            api_version=ApiVersion(version="2"),
            billed_units=BilledUnits(search_units=-(-len(view.documents) // 100)),
            tokens=TokenCounts(input_tokens=usage.total_tokens, output_tokens=0),
        )
        return CohereRerankResponse(id=str(uuid.uuid4()), results=results, usage=usage, meta=meta)
    return JinaRerankResponse(
        id=f"rerank-{uuid.uuid4()}",
        results=results,
        usage=usage,
        model=model_name,
        meta=RerankMeta(results=meta_results, truncated_documents=truncated),
    )


def score_response(
    scored: ScoredPairs, activation: str | None, model_name: str, relevance: RelevanceScore
) -> ScoreResponse:
    scores = relevance.apply(scored.scores, activation)
    n = len(scores)
    return ScoreResponse(
        id=f"score-{uuid.uuid4()}",
        created=int(time.time()),
        model=model_name,
        data=[ScoreItem(index=i, score=float(scores[i])) for i in range(n)],
        usage=_usage(scored),
        meta=RerankMeta(
            results=_meta_results(scored, list(range(n))),
            truncated_documents=int(np.count_nonzero(scored.prepared.truncated)),
        ),
    )
