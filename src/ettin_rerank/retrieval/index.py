"""A saved search index over a user's corpus: documents + first stage, for `search`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config.retrieval import SEARCH
from ..inference.long_documents import check_long_documents
from ..scoring import LongDocumentScorer, PairScorer, checked_scores
from .beir import Document, load_corpus, scoring_text, write_corpus
from .bm25 import BM25Config
from .files import INDEX_MARKER, PassageSettings, ReadReport, passage_position
from .first_stage import (
    DEFAULT_FIRST_STAGE,
    FirstStage,
    FirstStageSettings,
    build_first_stage,
    load_first_stage,
)
from .index_files import read_index_metadata, write_index_metadata
from .user_corpus import beir_corpus_file, read_user_corpus

if TYPE_CHECKING:
    from ..inference.reranker import Reranker

logger = logging.getLogger(__name__)
_META_FILE = INDEX_MARKER
_FORMAT_VERSION = 1
_WORD = re.compile(r"\w+")
EXCERPT_LEAD_WORDS = 4  # context shown before a snippet's first query word
EXCERPT_SCAN_CHARS = 20_000  # how much of an unwindowed text a snippet is looked for in


@dataclass
class SearchHit:
    rank: int
    doc_id: str  # a file's path relative to the folder indexed, `path#pN` for a long file's Nth passage
    score: float  # reranker logit when reranked, else the first-stage score
    first_stage_score: float
    first_stage_rank: int  # 1-based position in the first stage's list
    title: str
    text: str
    query: str = ""  # what was searched: the snippet shows the part that shares most words with it
    window: tuple[int, int] | None = None  # chars of `text` in the reranker's best window; None: all
    n_chunks: int | None = None  # windows the reranker scored; None: not reranked by the engine
    truncated: bool = False  # the reranker saw only part of the document (long_documents="truncate")

    @property
    def file(self) -> str:
        return passage_position(self.doc_id)[0]

    @property
    def passage(self) -> int | None:
        """1-based passage of a long file; None for a file indexed whole."""
        return passage_position(self.doc_id)[1]

    def snippet(self, width: int = 200) -> str:
        """Up to `width` characters of the best window (or of the text): the stretch sharing most
        words with the query, from its start when none does."""
        start, end = self.window or (0, len(self.text))
        return excerpt(self.text[start:end], self.query, width)

    def to_dict(self, snippet_width: int = 200) -> dict:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "file": self.file,
            "passage": self.passage,
            "score": self.score,
            "first_stage_score": self.first_stage_score,
            "first_stage_rank": self.first_stage_rank,
            "title": self.title,
            "snippet": self.snippet(snippet_width),
            "n_chunks": self.n_chunks,
            "truncated": self.truncated,
        }


def excerpt(text: str, query: str, width: int) -> str:
    """`text` with its whitespace flattened, cut to `width` characters where it shares most words
    with `query` (words of 3+ characters, lowercased; its start when none); "..." marks a cut.
    Only the first `EXCERPT_SCAN_CHARS` are searched, so a whole long file costs no more."""
    words = text[:EXCERPT_SCAN_CHARS].split()
    flat = " ".join(words)
    if len(flat) <= width and len(text) <= EXCERPT_SCAN_CHARS:
        return flat
    budget = width - 7  # room for the "... " and "..." marks
    terms = {w.lower() for w in _WORD.findall(query) if len(w) >= 3}
    hits = [bool(terms) and any(w.lower() in terms for w in _WORD.findall(word)) for word in words]
    best_start, best_hits = 0, 0
    end = length = inside = 0  # words[start:end] fit in `budget`: their joined length + 1, their hits
    for start in range(len(words)):
        if end < start:
            end, length, inside = start, 0, 0
        while end < len(words) and length + len(words[end]) <= budget:
            length += len(words[end]) + 1
            inside += hits[end]
            end += 1
        if inside > best_hits:
            best_start, best_hits = start, inside
        if end > start:
            length -= len(words[start]) + 1
            inside -= hits[start]
    if best_hits:  # start a few words before the first match, not where the stretch could begin
        first_match = hits.index(True, best_start)
        best_start = max(best_start, first_match - EXCERPT_LEAD_WORDS)
    shown = " ".join(words[best_start:])
    cut = shown[:budget]
    if len(cut) < len(shown) and not shown[len(cut)].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # end on a whole word
    more = len(cut) < len(shown) or len(text) > EXCERPT_SCAN_CHARS
    return ("... " if best_start else "") + cut + ("..." if more else "")


@dataclass
class CandidateScores:
    """The reranker's view of each candidate, in candidate order."""

    scores: np.ndarray  # (candidates,) float32 raw scores
    windows: list[tuple[int, int] | None]  # chars of the scored text in the best window; None: all
    n_chunks: list[int | None]  # windows scored; None when the scorer does not say
    truncated: list[bool]


def score_candidates(
    reranker: PairScorer,
    query: str,
    texts: Sequence[str],
    long_documents: str = "chunk",
    show_progress: bool = False,
) -> CandidateScores:
    """Score each text with the query. A `LongDocumentScorer` (the engine) reads long texts by the
    `long_documents` mode, reporting windows and truncation; any other `PairScorer` scores the texts
    as it cuts them."""
    check_long_documents(long_documents)
    pairs = [(query, text) for text in texts]
    if not isinstance(reranker, LongDocumentScorer):
        scores = checked_scores(reranker.score_pairs(pairs), len(texts), reranker.name)
        return CandidateScores(scores, [None] * len(texts), [None] * len(texts), [False] * len(texts))
    report = reranker.score_report(pairs, long_documents, show_progress_bar=show_progress)
    return CandidateScores(
        checked_scores(report.scores, len(texts), reranker.name),
        list(report.best_spans),
        [int(n) for n in report.n_chunks],
        [bool(t) for t in report.truncated],
    )


class SearchIndex:
    """Documents plus a first stage, saved in one directory::

    INDEX_DIR/ettin_index.json   format and settings, and what reading the documents skipped
    INDEX_DIR/corpus.jsonl       the documents (BEIR format): files, or passages of long files
    INDEX_DIR/...                what the first stage saves (bm25/, dense/; see first_stage.py)
    """

    def __init__(
        self,
        corpus: dict[str, Document],
        first_stage: FirstStage,
        passages: PassageSettings | None = None,
        reading: ReadReport | None = None,
    ):
        self.corpus = corpus
        self.first_stage = first_stage
        self.passages = passages  # how files were cut (None: a BEIR corpus, or an index without the record)
        self.reading = reading  # what reading the documents skipped (None when not known)

    @classmethod
    def build(
        cls,
        corpus: dict[str, Document],
        first_stage: str = DEFAULT_FIRST_STAGE,
        bm25_config: BM25Config | None = None,
        dense_model: str | None = None,
        device: str | None = "cpu",
        show_progress: bool = True,
        passages: PassageSettings | None = None,
        reading: ReadReport | None = None,
    ) -> SearchIndex:
        """Index `corpus`; `show_progress` is the first stage's own (bm25s, sentence-transformers) bars."""
        # The index keeps its own embeddings, so the shared embedding cache is not written.
        settings = FirstStageSettings(
            bm25=bm25_config, dense_model=dense_model, device=device, use_cache=False
        )
        stage = build_first_stage(first_stage, corpus, settings, show_progress=show_progress)
        return cls(corpus, stage, passages, reading)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_corpus(self.corpus, directory / "corpus.jsonl")
        self.first_stage.save(directory)
        meta = {
            "first_stage": self.first_stage.name,
            "documents": len(self.corpus),
        }
        if self.passages is not None:
            meta["passages"] = {"words": self.passages.words, "overlap": self.passages.overlap}
        if self.reading is not None:
            meta["reading"] = self.reading.to_dict()
        write_index_metadata(directory, _META_FILE, _FORMAT_VERSION, meta, indent=2)
        return directory

    @classmethod
    def in_memory(
        cls, corpus: dict[str, Document], passages: PassageSettings, reading: ReadReport
    ) -> SearchIndex:
        """The index a folder searched directly gets: BM25 with its defaults, no bars of its own."""
        return cls.build(corpus, "bm25", show_progress=False, passages=passages, reading=reading)

    @classmethod
    def open(
        cls,
        path: str | Path,
        device: str | None = "cpu",
        passages: PassageSettings | None = None,
        show_progress: bool = False,
        cache: bool = True,
    ) -> SearchIndex:
        """A saved index; or, for a folder of documents, one file or a corpus.jsonl, a BM25 index
        (`reading` says what was skipped; `show_progress`: a bar over the bytes read).

        A folder or file is indexed once and kept in the user's cache, updated by each file's size
        and modification time (`folder_cache.py`); `cache=False` reads it afresh and keeps nothing.
        A corpus.jsonl is one file read as it is: it is indexed in memory each time (build a saved
        index of a large one with `ettin-rerank index`)."""
        path = Path(path)
        if (path / _META_FILE).is_file():
            return cls.load(path, device=device)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: pass an index directory (from `ettin-rerank index`), "
                "a folder of documents, a file, or a corpus.jsonl"
            )
        passages = passages or PassageSettings()
        if cache and beir_corpus_file(path) is None:
            from .folder_cache import open_folder_index  # it builds on this class

            index, _ = open_folder_index(path, passages, show_progress=show_progress)
            return index
        corpus, reading = read_user_corpus(path, passages, show_progress=show_progress)
        logger.info("indexed %d documents from %s in memory (bm25)", len(corpus), path)
        return cls.in_memory(corpus, passages, reading)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = "cpu") -> SearchIndex:
        directory = Path(directory)
        meta = read_index_metadata(
            directory,
            _META_FILE,
            "search index",
            _FORMAT_VERSION,
            ("first_stage",),
            f"build one with `ettin-rerank index CORPUS -o {directory}`",
        )
        corpus = load_corpus(directory / "corpus.jsonl")
        first_stage = load_first_stage(meta["first_stage"], directory, FirstStageSettings(device=device))
        passages = PassageSettings(**meta["passages"]) if "passages" in meta else None
        return cls(corpus, first_stage, passages)

    def retrieve(self, query: str, top_k: int = 100) -> dict[str, float]:
        return self.first_stage.search({"q": query}, k=top_k)["q"]

    def search(
        self,
        query: str,
        top_k: int = SEARCH.top_k,
        n: int = SEARCH.n,
        reranker: Reranker | PairScorer | None = None,
        long_documents: str = SEARCH.long_documents,
        show_progress: bool = False,
    ) -> list[SearchHit]:
        """First stage top-`top_k`, reranked with `reranker` when given, best `n` returned.

        `long_documents`: "chunk" scores a document longer than the reranker reads in overlapping
        windows and keeps the best (its snippet shows that window); "truncate" reads its start only
        (`SearchHit.truncated`). Equal reranker scores keep first-stage order. `show_progress`: the
        reranker's bar.
        """
        if not query.strip():
            raise ValueError("the query is empty")
        if n < 1 or top_k < 1:
            raise ValueError("n and top_k must be at least 1")
        candidates = self.retrieve(query, top_k)
        by_score = sorted(candidates, key=lambda doc_id: -candidates[doc_id])  # stable: ties keep order
        first_stage_rank = {doc_id: position for position, doc_id in enumerate(by_score, start=1)}
        docs = [self.corpus[doc_id] for doc_id in by_score]
        if reranker is None or not docs:
            hits = [_hit(doc, candidates[doc.doc_id], candidates, first_stage_rank, query) for doc in docs]
        else:
            texts = [scoring_text(doc) for doc in docs]
            scored = score_candidates(reranker, query, texts, long_documents, show_progress)
            order = sorted(range(len(docs)), key=lambda i: -float(scored.scores[i]))  # stable
            hits = [
                _hit(
                    docs[i],
                    float(scored.scores[i]),
                    candidates,
                    first_stage_rank,
                    query,
                    window=_text_window(docs[i], scored.windows[i]),
                    n_chunks=scored.n_chunks[i],
                    truncated=scored.truncated[i],
                )
                for i in order
            ]
        for rank, hit in enumerate(hits[:n], start=1):
            hit.rank = rank
        return hits[:n]


def _hit(
    doc: Document,
    score: float,
    candidates: dict[str, float],
    first_stage_rank: dict[str, int],
    query: str,
    **reranked,
) -> SearchHit:
    """A hit, ranked later; `reranked`: the reranker's window, n_chunks and truncated."""
    return SearchHit(
        0,
        doc.doc_id,
        float(score),
        float(candidates[doc.doc_id]),
        first_stage_rank[doc.doc_id],
        doc.title,
        doc.text,
        query=query,
        **reranked,
    )


def _text_window(doc: Document, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """A window of the scored text (`title text`) as characters of `doc.text`."""
    if span is None:
        return None
    offset = len(scoring_text(doc)) - len(doc.text)  # the title and its space, when there is a title
    start, end = span
    return max(start - offset, 0), max(end - offset, 0)
