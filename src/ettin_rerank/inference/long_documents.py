"""Long documents, one implementation for the library and the server: pairs + truncation options
-> encoded rows, and row scores -> one score per pair.

A `PairsJob` (the library's `predict`/`rank`, or any HTTP dialect's request after the protocol
boundary) goes through `prepare` into `Prepared`: one encoded row per pair, or, for documents
scored in chunks, one row per window, with `owner` mapping rows back to pairs;
`Prepared.aggregate` turns row scores into pair scores. The phases, each one function:

1. `cut_queries`: a query over `max_tokens_per_query` (or, when chunking, over half the max
   length) is cut to its first tokens.
2. `cut_documents`: per-document limits, chunk windows and left truncation, on the tokens of
   each document alone.
3. `expand_rows`: one (query, text) row per pair, or per window.
4. the scorer's tokenizer encodes the rows with the pair template (`encode_pairs`).
5. `count_rows`, `refuse_overflow`, `fill_document_tokens`: what the response reports.

Long documents:
- truncate (default): the pair is cut to the model's max length exactly as `Reranker.predict`
  cuts it (`longest_first`, from the right), and the result says `truncated: true`;
  `truncation_direction: left` keeps the end of the document instead.
- chunk: a document that does not fit beside the query is split into windows of
  `W = max_length - special tokens - query tokens - 4` tokens (a query longer than half the
  max length is first cut to that half), consecutive windows overlapping by
  `min(W // 2, 128)` tokens (`chunk_overlap`: a span that long is whole in one window) and the
  last one aligned to the document's end; each window is scored with the query and the
  document's score is the max over its windows (`n_chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..config.loading import LONG_DOCUMENT_MODES
from .tokenization import EncodedPairs, PairTokenizer, TextTokens, chunk_windows

CHUNK_MARGIN = 4  # tokens kept free per window for re-tokenization drift at the cuts


class DocumentTooLong(ValueError):
    """A pair does not fit and truncation is disabled; `field` names the offending input."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TruncationOptions:
    max_length: int | None = None  # pair budget in tokens (vLLM truncate_prompt_tokens); None: the model's
    max_tokens_per_doc: int | None = None  # cut each document to this many tokens first (Cohere, vLLM)
    max_tokens_per_query: int | None = None  # cut the query to this many tokens first (vLLM)
    side: str = "right"  # which end of a too-long document is cut: right keeps its start
    allow: bool = True  # False (TEI truncate=false, Voyage truncation=false): too long is a 422
    long_document: str | None = None  # truncate | chunk; None: the caller's default
    max_chunks_per_doc: int | None = (
        None  # chunk mode: score at most this many windows per document (its first)
    )


def check_long_documents(mode: str) -> str:
    if mode not in LONG_DOCUMENT_MODES:
        raise ValueError(f"long_documents must be one of {LONG_DOCUMENT_MODES}, got {mode!r}")
    return mode


@dataclass
class PairScores:
    """Raw fp32 scores of pairs in input order, with what reading them cut or windowed: what every
    surface (`Reranker.score_report`, search, the server) reports about long documents."""

    scores: np.ndarray  # (pairs,) fp32; the max over windows for a chunked document
    truncated: np.ndarray  # (pairs,) bool: some of the pair's text was not scored
    n_chunks: np.ndarray  # (pairs,) int64: windows scored (1 unless chunked)
    best_spans: list[tuple[int, int] | None]  # per pair: best window's characters; None: read whole

    @classmethod
    def whole(cls, scores: np.ndarray, truncated: np.ndarray) -> PairScores:
        """Scores of pairs each read as one row (cut to the max length where `truncated`)."""
        n = len(scores)
        return cls(scores, truncated, np.ones(n, dtype=np.int64), [None] * n)

    @classmethod
    def concatenate(cls, parts: Sequence[PairScores]) -> PairScores:
        """The parts' pairs one after the other (no parts: no pairs)."""
        return cls(
            np.concatenate([np.empty(0, dtype=np.float32), *(part.scores for part in parts)]),
            np.concatenate([np.zeros(0, dtype=bool), *(part.truncated for part in parts)]),
            np.concatenate([np.zeros(0, dtype=np.int64), *(part.n_chunks for part in parts)]),
            [span for part in parts for span in part.best_spans],
        )


@dataclass
class PairsJob:
    """One request in the engine's terms: score `queries[i]` against `documents[i]`."""

    queries: list[str]
    documents: list[str]
    truncation: TruncationOptions = field(default_factory=TruncationOptions)
    documents_field: str = "documents"  # how the request named its documents, for error messages

    def __len__(self) -> int:
        return len(self.documents)


@dataclass
class Prepared:
    encoded: EncodedPairs  # one row per pair, or per window of a chunked document
    owner: np.ndarray  # (rows,) int64: the pair each row scores
    n_pairs: int
    tokens: np.ndarray  # (pairs,) int64: tokens scored for the pair, special tokens and all windows included
    truncated: np.ndarray  # (pairs,) bool: some of the pair's text was not scored
    n_chunks: np.ndarray  # (pairs,) int64: windows scored (1 unless chunked)
    document_tokens: dict[int, int]  # pair -> the document's own token count, for truncated or chunked pairs
    chunked: bool  # long_document was "chunk"
    spans: list[
        tuple[int, int] | None
    ]  # (rows,) character span of a window in its document; None: not a window

    @property
    def rows(self) -> int:
        return len(self.encoded)

    def aggregate(self, row_scores: np.ndarray) -> np.ndarray:
        """Per-pair fp32 scores: the row's score, or the max over a chunked document's windows."""
        if self.rows == self.n_pairs:
            return row_scores.astype(np.float32, copy=False)
        scores = np.full(self.n_pairs, -np.inf, dtype=np.float32)
        np.maximum.at(scores, self.owner, row_scores.astype(np.float32, copy=False))
        return scores

    def report(self, row_scores: np.ndarray) -> PairScores:
        """Row scores -> each pair's score, with its truncation, window count and best window."""
        best_spans = [self.spans[row] for row in self.best_rows(row_scores)] if self.n_pairs else []
        return PairScores(self.aggregate(row_scores), self.truncated, self.n_chunks, best_spans)

    def best_rows(self, row_scores: np.ndarray) -> np.ndarray:
        """(pairs,) int64: the row that gave each pair its score (the first of equal windows)."""
        order = np.lexsort((np.arange(self.rows), -row_scores.astype(np.float64), self.owner))
        first_of_owner = np.ones(self.rows, dtype=bool)
        first_of_owner[1:] = self.owner[order][1:] != self.owner[order][:-1]
        return order[first_of_owner]


@dataclass(frozen=True)
class Budget:
    """The token arithmetic of one job, decided once."""

    max_length: int  # tokens per pair, special tokens included
    specials: int  # tokens the pair template adds
    chunked: bool  # long_document is "chunk"

    @property
    def text_tokens(self) -> int:
        """Tokens left for query + document in one pair."""
        return self.max_length - self.specials

    def chunk_window(self, query_tokens: int) -> int:
        return max(self.text_tokens - query_tokens - CHUNK_MARGIN, 1)


@dataclass
class CutReport:
    """What was cut from each pair, for the response's `truncated` and `document_tokens`."""

    requested: np.ndarray  # (pairs,) bool: cut by an explicit per-request limit
    overflow: np.ndarray  # (pairs,) bool: cut because the pair did not fit the max length
    document_tokens: dict[int, int]  # pair -> the document's own token count, once known

    @classmethod
    def empty(cls, n: int) -> CutReport:
        return cls(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), {})


def prepare(tokenizer: PairTokenizer, job: PairsJob, default_long_document: str = "truncate") -> Prepared:
    options = job.truncation
    budget = Budget(
        max_length=options.max_length or tokenizer.max_length,
        specials=tokenizer.num_special_tokens,
        chunked=(options.long_document or default_long_document) == "chunk",
    )
    report = CutReport.empty(len(job))
    queries, query_tokens = cut_queries(tokenizer, job.queries, options, budget, report)
    documents, windows = cut_documents(tokenizer, job.documents, query_tokens, options, budget, report)
    pairs, owner, spans = expand_rows(queries, documents, windows, job.documents)
    encoded = tokenizer.encode_pairs(pairs, max_length=budget.max_length)
    tokens, n_chunks = count_rows(encoded, owner, len(job), report)
    if not options.allow:
        refuse_overflow(job, report, budget)
    truncated = report.overflow | report.requested
    fill_document_tokens(tokenizer, job.documents, truncated, report)
    return Prepared(
        encoded=encoded,
        owner=owner,
        n_pairs=len(job),
        tokens=tokens,
        truncated=truncated,
        n_chunks=n_chunks,
        document_tokens=report.document_tokens,
        chunked=budget.chunked,
        spans=spans,
    )


def cut_queries(
    tokenizer: PairTokenizer,
    queries: Sequence[str],
    options: TruncationOptions,
    budget: Budget,
    report: CutReport,
) -> tuple[list[str], list[int]]:
    """Queries cut to their limit, and each pair's query tokens (0 where no option needs them).

    Queries alone are tokenized (once per distinct query) only when an option needs their length.
    """
    queries = list(queries)
    if options.max_tokens_per_query is None and not budget.chunked and options.side != "left":
        return queries, [0] * len(queries)
    asked = options.max_tokens_per_query or budget.max_length
    limit = min(asked, budget.text_tokens // 2) if budget.chunked else asked
    lengths: dict[str, int] = {}
    cut: dict[str, str] = {}
    for tokens in tokenizer.tokenize_texts(list(dict.fromkeys(queries))):
        if len(tokens) > limit:
            cut[tokens.text] = tokens.head(limit)
        lengths[tokens.text] = min(len(tokens), limit)
    by_request = options.max_tokens_per_query is not None and options.max_tokens_per_query <= limit
    for i, query in enumerate(queries):
        if query in cut:
            queries[i] = cut[query]
            lengths[queries[i]] = lengths[query]
            if by_request:
                report.requested[i] = True
            else:
                report.overflow[i] = True
    return queries, [lengths.get(query, 0) for query in queries]


def cut_documents(
    tokenizer: PairTokenizer,
    documents: Sequence[str],
    query_tokens: Sequence[int],
    options: TruncationOptions,
    budget: Budget,
    report: CutReport,
) -> tuple[list[str], list[list[tuple[int, int]] | None]]:
    """Documents after per-document limits and left truncation, and each chunked document's windows
    (character spans in the document as given).

    Documents alone are tokenized only for per-document limits, left truncation and chunking;
    otherwise the pair template's own truncation is the only cut.
    """
    documents = list(documents)
    windows: list[list[tuple[int, int]] | None] = [None] * len(documents)
    if options.max_tokens_per_doc is None and not budget.chunked and options.side != "left":
        return documents, windows
    for i, tokens in enumerate(tokenizer.tokenize_texts(documents)):
        start, stop = 0, len(tokens)  # the tokens still in play
        limit = options.max_tokens_per_doc
        if limit is not None and len(tokens) > limit:
            documents[i] = tokens.cut(limit, options.side)
            start, stop = (len(tokens) - limit, len(tokens)) if options.side == "left" else (0, limit)
            report.requested[i] = True
            report.document_tokens[i] = len(tokens)
        if budget.chunked:
            spans = chunk_spans(tokens, start, stop, budget.chunk_window(query_tokens[i]))
            if spans is not None:
                report.document_tokens[i] = len(tokens)
                if options.max_chunks_per_doc is not None and len(spans) > options.max_chunks_per_doc:
                    spans = spans[: options.max_chunks_per_doc]
                    report.requested[i] = True
            windows[i] = spans
        elif options.side == "left":
            kept = keep_end(tokens, stop - start, query_tokens[i], budget)
            if kept is not None:
                documents[i] = kept
                report.overflow[i] = True
                report.document_tokens[i] = len(tokens)
    return documents, windows


def chunk_spans(tokens: TextTokens, start: int, stop: int, window: int) -> list[tuple[int, int]] | None:
    """Character spans of the overlapping windows of `tokens[start:stop]`, or None when it fits in one."""
    if stop - start <= window:
        return None
    return [tokens.char_span(start + a, start + b) for a, b in chunk_windows(stop - start, window)]


def keep_end(tokens: TextTokens, length: int, query_tokens: int, budget: Budget) -> str | None:
    """Left truncation: the document's last tokens, as many as `longest_first` would have kept from
    its start; None when the pair fits. `length`: the document's tokens still in play (its end)."""
    target = max(budget.text_tokens - query_tokens, budget.text_tokens - budget.text_tokens // 2)
    if length > target and query_tokens + length > budget.text_tokens:
        return tokens.tail(target)
    return None


def expand_rows(
    queries: Sequence[str],
    documents: Sequence[str],
    windows: Sequence[list[tuple[int, int]] | None],
    originals: Sequence[str],
) -> tuple[list[tuple[str, str]], np.ndarray, list[tuple[int, int] | None]]:
    """One (query, text) row per pair, or per window (cut from the document as given); the (rows,)
    int64 pair of each row; and each row's window span (None for a whole or cut document)."""
    pairs: list[tuple[str, str]] = []
    owner: list[int] = []
    spans: list[tuple[int, int] | None] = []
    for i, (query, document, pair_windows) in enumerate(zip(queries, documents, windows, strict=True)):
        if pair_windows is None:
            pairs.append((query, document))
            owner.append(i)
            spans.append(None)
            continue
        for start, end in pair_windows:
            pairs.append((query, originals[i][start:end]))
            owner.append(i)
            spans.append((start, end))
    return pairs, np.asarray(owner, dtype=np.int64), spans


def count_rows(
    encoded: EncodedPairs, owner: np.ndarray, n_pairs: int, report: CutReport
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens scored and rows per pair; a pair whose row the template truncated overflowed."""
    tokens = np.bincount(owner, weights=encoded.lengths, minlength=n_pairs).astype(np.int64)
    n_chunks = np.bincount(owner, minlength=n_pairs).astype(np.int64)
    np.logical_or.at(report.overflow, owner, encoded.truncated)
    return tokens, n_chunks


def refuse_overflow(job: PairsJob, report: CutReport, budget: Budget) -> None:
    """Truncation disabled (TEI `truncate: false`, Voyage `truncation: false`): a 422 naming the first
    pair that did not fit."""
    if report.overflow.any():
        i = int(np.flatnonzero(report.overflow)[0])
        raise DocumentTooLong(
            f"{job.documents_field}[{i}] does not fit in {budget.max_length} tokens with its query and "
            f"truncation is disabled; shorten it, or allow truncation",
            field=f"{job.documents_field}[{i}]",
        )


def fill_document_tokens(
    tokenizer: PairTokenizer, documents: Sequence[str], truncated: np.ndarray, report: CutReport
) -> None:
    """The own token count of every truncated document not tokenized alone already."""
    missing = [int(i) for i in np.flatnonzero(truncated) if int(i) not in report.document_tokens]
    if missing:
        alone = tokenizer.tokenize_texts([documents[i] for i in missing])
        for i, tokens in zip(missing, alone, strict=True):
            report.document_tokens[i] = len(tokens)
