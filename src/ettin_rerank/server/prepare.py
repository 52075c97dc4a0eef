"""Internal requests and the tokenization stage: request options -> encoded rows for the batcher.

Every dialect's request becomes one `PairsJob` at the protocol boundary. `prepare` turns it
into `Prepared`: one encoded row per pair, or, for documents scored in chunks, one row per
window, with `owner` mapping rows back to pairs. It runs on the service's single
tokenization thread (the tokenizer backend is stateful), never on the event loop.

Long documents:
- truncate (default): the pair is cut to the model's max length exactly as `Reranker.predict`
  cuts it (`longest_first`, from the right), and the result says `truncated: true`;
  `truncation_direction: left` keeps the end of the document instead.
- chunk: a document that does not fit beside the query is split into windows of
  `W = max_length - special tokens - query tokens - 4` tokens (a query longer than half the
  max length is first cut to that half), consecutive windows overlapping by
  `min(W // 4, 128)` tokens and the last one aligned to the document's end; each window is
  scored with the query and the document's score is the max over its windows (`n_chunks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..inference.tokenization import EncodedPairs
from .errors import InvalidRequest
from .scorer import Scorer, TextTokens, chunk_windows, tokenize_alone

CHUNK_MARGIN = 4  # tokens kept free per window for re-tokenization drift at the cuts


@dataclass(frozen=True)
class TruncationOptions:
    max_length: int | None = None  # pair budget in tokens (vLLM truncate_prompt_tokens); None: the model's
    max_tokens_per_doc: int | None = None  # cut each document to this many tokens first (Cohere, vLLM)
    max_tokens_per_query: int | None = None  # cut the query to this many tokens first (vLLM)
    side: str = "right"  # which end of a too-long document is cut: right keeps its start
    allow: bool = True  # False (TEI truncate=false, Voyage truncation=false): too long is a 422
    long_document: str | None = None  # truncate | chunk; None: the server's default


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


def prepare(scorer: Scorer, job: PairsJob, default_long_document: str = "truncate") -> Prepared:
    options = job.truncation
    max_length = options.max_length or scorer.max_length
    specials = scorer.tokenizer.num_special_tokens
    mode = options.long_document or default_long_document
    n = len(job)
    queries, documents = list(job.queries), list(job.documents)
    requested = np.zeros(n, dtype=bool)  # cut by an explicit per-request limit
    overflow = np.zeros(n, dtype=bool)  # cut because the pair did not fit the max length
    document_tokens: dict[int, int] = {}

    # Queries alone are tokenized only when an option needs their length.
    query_tokens: dict[str, int] = {}
    if options.max_tokens_per_query is not None or mode == "chunk" or options.side == "left":
        asked = options.max_tokens_per_query or max_length
        limit = min(asked, (max_length - specials) // 2) if mode == "chunk" else asked
        cut_query: dict[str, str] = {}
        for tokens in tokenize_alone(scorer, list(dict.fromkeys(queries))):
            if len(tokens) > limit:
                cut_query[tokens.text] = tokens.head(limit)
            query_tokens[tokens.text] = min(len(tokens), limit)
        for i, query in enumerate(queries):
            if query in cut_query:
                queries[i] = cut_query[query]
                query_tokens[queries[i]] = query_tokens[query]
                if options.max_tokens_per_query is not None and options.max_tokens_per_query <= limit:
                    requested[i] = True
                else:
                    overflow[i] = True

    # Documents alone are tokenized only for per-document limits, left truncation and chunking.
    windows: list[list[tuple[int, int]] | None] = [None] * n
    doc_tokens: list[TextTokens] = []
    if options.max_tokens_per_doc is not None or mode == "chunk" or options.side == "left":
        doc_tokens = tokenize_alone(scorer, documents)
        for i, tokens in enumerate(doc_tokens):
            length, base = len(tokens), 0  # tokens still in play: tokens[base : base + length]
            if options.max_tokens_per_doc is not None and length > options.max_tokens_per_doc:
                documents[i] = tokens.cut(options.max_tokens_per_doc, options.side)
                document_tokens[i] = len(tokens)
                requested[i] = True
                length = options.max_tokens_per_doc
                base = len(tokens) - length if options.side == "left" else 0
            q = query_tokens.get(queries[i], 0)
            if mode == "chunk":
                window = max(max_length - specials - q - CHUNK_MARGIN, 1)
                if length > window:
                    windows[i] = [(base + a, base + b) for a, b in chunk_windows(length, window)]
                    document_tokens[i] = len(tokens)
            elif options.side == "left":
                # Where longest_first would stop cutting the document, keep its end instead of its start.
                budget = max_length - specials
                target = max(budget - q, budget - budget // 2)
                if length > target and q + length > budget:
                    documents[i] = tokens.tail(target)
                    document_tokens[i] = len(tokens)
                    overflow[i] = True

    # One row per pair, or per window.
    pairs: list[tuple[str, str]] = []
    owner: list[int] = []
    for i in range(n):
        if windows[i] is None:
            pairs.append((queries[i], documents[i]))
            owner.append(i)
        else:
            tokens = doc_tokens[i]
            for start, stop in windows[i]:
                pairs.append((queries[i], tokens.span(start, stop)))
                owner.append(i)
    encoded = scorer.encode(pairs, max_length=max_length)
    owner_array = np.asarray(owner, dtype=np.int64)
    lengths = encoded.lengths
    tokens_per_pair = np.bincount(owner_array, weights=lengths, minlength=n).astype(np.int64)
    n_chunks = np.bincount(owner_array, minlength=n).astype(np.int64)
    np.logical_or.at(overflow, owner_array, encoded.truncated)

    if not options.allow and overflow.any():
        i = int(np.flatnonzero(overflow)[0])
        raise InvalidRequest(
            f"{job.documents_field}[{i}] does not fit in {max_length} tokens with its query and truncation "
            f"is disabled; shorten it, or allow truncation",
            field=f"{job.documents_field}[{i}]",
        )
    truncated = overflow | requested
    missing = [int(i) for i in np.flatnonzero(truncated) if int(i) not in document_tokens]
    if missing:
        for i, tokens in zip(
            missing, tokenize_alone(scorer, [job.documents[i] for i in missing]), strict=True
        ):
            document_tokens[i] = len(tokens)
    return Prepared(
        encoded=encoded,
        owner=owner_array,
        n_pairs=n,
        tokens=tokens_per_pair,
        truncated=truncated,
        n_chunks=n_chunks,
        document_tokens=document_tokens,
        chunked=mode == "chunk",
    )
