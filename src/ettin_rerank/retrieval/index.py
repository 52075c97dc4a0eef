"""A saved search index over a user's corpus: documents + first stage, for `search`."""

from __future__ import annotations

import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np
from tqdm.auto import tqdm

from ..config.retrieval import LOWEST_RELEVANCE_LABEL, RELEVANCE_LABELS, RESIDENT, SEARCH
from ..inference.long_documents import check_long_documents
from ..inference.scores import apply_activation, probability_activation
from ..scoring import LongDocumentScorer, PairScorer, TokenizedPairScorer, checked_scores
from .beir import Document, load_corpus, scoring_text, write_corpus
from .bm25 import BM25Config, ignored_words
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
    score: float  # reranker's raw score (logit) when reranked, else the first-stage score
    first_stage_score: float
    first_stage_rank: int  # 1-based position in the first stage's list
    title: str
    text: str
    query: str = ""  # what was searched: the snippet shows the part that shares most words with it
    window: tuple[int, int] | None = None  # chars of `text` in the reranker's best window; None: all
    n_chunks: int | None = None  # windows the reranker scored; None: not reranked by the engine
    truncated: bool = False  # the reranker saw only part of the document (long_documents="truncate")
    reranked: bool = False  # scored by the reranker (False: beyond the budget or depth, or no reranker)
    probability: float | None = None  # P(relevant) from the reranker's score; None: not reranked
    words: tuple[int, int] | None = None  # 1-based first and last word of a passage in its file

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

    @property
    def relevance(self) -> str | None:
        """The probability's label (`config.retrieval.RELEVANCE_LABELS`); None when not reranked."""
        return None if self.probability is None else relevance_label(self.probability)

    def to_dict(self, snippet_width: int = SEARCH.snippet_width) -> dict:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "file": self.file,
            "passage": self.passage,
            "words": list(self.words) if self.words else None,
            "reranked": self.reranked,
            "score": self.score,
            "probability": self.probability,
            "relevance": self.relevance,
            "first_stage_score": self.first_stage_score,
            "first_stage_rank": self.first_stage_rank,
            "title": self.title,
            "snippet": self.snippet(snippet_width),
            "n_chunks": self.n_chunks,
            "truncated": self.truncated,
        }


def relevance_label(probability: float) -> str:
    """ "high", "medium" or "low": the first cut point of `RELEVANCE_LABELS` that `probability` reaches."""
    for label, cut in RELEVANCE_LABELS:
        if probability >= cut:
            return label
    return LOWEST_RELEVANCE_LABEL


@dataclass
class SearchResults(Sequence[SearchHit]):
    """The hits of one search (a sequence of `SearchHit`, best first) and how much was reranked."""

    hits: list[SearchHit] = field(default_factory=list)
    candidates: int = 0  # first-stage candidates (passages or documents)
    reranked: int = 0  # of them, how many the reranker scored: the first ones in first-stage order
    rerank_seconds: float = 0.0  # wall time of reranking (tokenizing and scoring)
    budget_s: float | None = None  # the time budget that applied; None: none (no limit, or a depth)
    depth: int | None = None  # the fixed number asked for, when one was

    @overload
    def __getitem__(self, index: int) -> SearchHit: ...
    @overload
    def __getitem__(self, index: slice) -> list[SearchHit]: ...
    def __getitem__(self, index: int | slice) -> SearchHit | list[SearchHit]:
        return self.hits[index]

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def to_dict(self) -> dict:
        """What was reranked, for `--json` (the hits are written by the caller, with its snippet width)."""
        return {
            "candidates": self.candidates,
            "reranked_candidates": self.reranked,
            "rerank_seconds": round(self.rerank_seconds, 3),
            "budget_s": self.budget_s,
            "depth": self.depth,
        }


def check_search_arguments(
    query: str,
    top_k: int = SEARCH.top_k,
    n: int = SEARCH.n,
    budget_s: float | None = SEARCH.budget_s,
    depth: int | None = SEARCH.depth,
) -> None:
    """ValueError unless a search can run with these: cheap, so a command checks before loading a model."""
    if not query.strip():
        raise ValueError("the query is empty")
    if n < 1 or top_k < 1:
        raise ValueError(f"n and top_k must be at least 1, got n={n}, top_k={top_k}")
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be at least 1 (None: the time budget decides), got {depth}")
    if budget_s is not None and not budget_s >= 0:  # also refuses NaN
        raise ValueError(f"budget must be at least 0 seconds (0: no limit), got {budget_s}")


def excerpt(text: str, query: str, width: int) -> str:
    """`text` with its whitespace flattened, cut to `width` characters where it shares most words
    with `query` (words of 3+ characters, lowercased, not the ones BM25 ignores: a stretch of "the"s
    is not a match; its start when none); "..." marks a cut.
    Only the first `EXCERPT_SCAN_CHARS` are searched, so a whole long file costs no more."""
    words = text[:EXCERPT_SCAN_CHARS].split()
    flat = " ".join(words)
    if len(flat) <= width and len(text) <= EXCERPT_SCAN_CHARS:
        return flat
    budget = width - 7  # room for the "... " and "..." marks
    terms = {w.lower() for w in _WORD.findall(query) if len(w) >= 3} - ignored_words()
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

    @classmethod
    def concatenate(cls, parts: Sequence[CandidateScores]) -> CandidateScores:
        return cls(
            np.concatenate([np.empty(0, dtype=np.float32), *(part.scores for part in parts)]),
            [window for part in parts for window in part.windows],
            [n for part in parts for n in part.n_chunks],
            [cut for part in parts for cut in part.truncated],
        )


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
        """The index saved in `directory`. The last `RESIDENT.loaded_indexes_kept` loaded are kept in
        memory while their files are unchanged, so a process that searches again (the resident of
        `search`, a notebook) does not parse them again."""
        directory = Path(directory)
        stamp = _saved_stamp(directory, device)
        if stamp is not None and stamp in _LOADED:
            _LOADED.move_to_end(stamp)
            kept = _LOADED[stamp]
        else:
            kept = cls._read(directory, device)
            if stamp is not None:
                _LOADED[stamp] = kept
                while len(_LOADED) > RESIDENT.loaded_indexes_kept:
                    _LOADED.popitem(last=False)
        return cls(kept.corpus, kept.first_stage, kept.passages)  # the caller's own `reading`

    @classmethod
    def _read(cls, directory: Path, device: str | None) -> SearchIndex:
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

    def search(  # noqa: PLR0913 (its parameters are the `search` command's flags)
        self,
        query: str,
        top_k: int = SEARCH.top_k,
        n: int = SEARCH.n,
        reranker: Reranker | PairScorer | None = None,
        long_documents: str = SEARCH.long_documents,
        show_progress: bool = False,
        budget_s: float | None = SEARCH.budget_s,
        depth: int | None = SEARCH.depth,
        one_per_file: bool = SEARCH.one_per_file,
        snippet_width: int = SEARCH.snippet_width,
    ) -> SearchResults:
        """First stage top-`top_k`, the first of them reranked with `reranker` when given, best `n`
        returned (`SearchResults`: the hits, and how many candidates were reranked).

        How many are reranked: `depth` exactly (the first stage then retrieves at least `depth`);
        else as many, in first-stage order, as `budget_s` seconds allow, scored in small batches
        while the measured speed says the next batch fits (the first batch always runs); a budget of
        0 or None reranks every candidate. Reranked candidates come first, by reranker score (ties
        keep first-stage order), the rest below them in first-stage order.

        `one_per_file`: a file's best passage only (the first in that order). Whatever the mode, a
        hit whose snippet (`snippet_width` characters) an earlier hit already shows is dropped.
        `long_documents`: "chunk" scores a document longer than the reranker reads in overlapping
        windows and keeps the best (its snippet shows that window); "truncate" reads its start only
        (`SearchHit.truncated`). `show_progress`: a bar over the candidates reranked.
        """
        check_search_arguments(query, top_k, n, budget_s, depth)
        candidates = self.retrieve(query, max(top_k, depth or 0))
        by_score = sorted(candidates, key=lambda doc_id: -candidates[doc_id])  # stable: ties keep order
        first_stage_rank = {doc_id: position for position, doc_id in enumerate(by_score, start=1)}
        docs = [self.corpus[doc_id] for doc_id in by_score]
        hits = [_hit(doc, candidates, first_stage_rank, query, self._words(doc)) for doc in docs]
        budget = None if depth is not None or not budget_s else budget_s
        results = SearchResults(candidates=len(docs), budget_s=budget, depth=depth)
        if reranker is not None and docs:
            texts = [scoring_text(doc) for doc in docs]
            started = time.perf_counter()
            scored = rerank_in_order(reranker, query, texts, long_documents, budget, depth, show_progress)
            results.rerank_seconds = time.perf_counter() - started
            results.reranked = len(scored.scores)
            probabilities = reranker_probabilities(reranker, scored.scores)
            for i, hit in enumerate(hits[: results.reranked]):
                hit.score = float(scored.scores[i])
                hit.reranked = True
                hit.probability = None if probabilities is None else float(probabilities[i])
                hit.window = _text_window(docs[i], scored.windows[i])
                hit.n_chunks = scored.n_chunks[i]
                hit.truncated = scored.truncated[i]
            order = sorted(range(results.reranked), key=lambda i: -float(scored.scores[i]))  # stable
            hits = [hits[i] for i in order] + hits[results.reranked :]
        results.hits = shown_hits(hits, n, one_per_file, snippet_width)
        for rank, hit in enumerate(results.hits, start=1):
            hit.rank = rank
        return results

    def _words(self, doc: Document) -> tuple[int, int] | None:
        """A passage's first and last word in its file (1-based), from how the files were cut."""
        passage = passage_position(doc.doc_id)[1]
        if passage is None or self.passages is None or not self.passages.words:
            return None
        first = (passage - 1) * (self.passages.words - self.passages.overlap) + 1
        return first, first + len(doc.text.split()) - 1


# (directory, device, the metadata and corpus files' identity) -> the index loaded from them
_LOADED: OrderedDict[tuple, SearchIndex] = OrderedDict()


def _saved_stamp(directory: Path, device: str | None) -> tuple | None:
    """What says a saved index is the one loaded before: `save` writes the metadata file last, by
    `os.replace`, so a rewritten index has a new one; None when the files cannot be read."""
    try:
        files = [os.stat(directory / name) for name in (_META_FILE, "corpus.jsonl")]
    except OSError:
        return None
    identity = tuple((stat.st_ino, stat.st_size, stat.st_mtime_ns) for stat in files)
    return (os.path.abspath(directory), device, identity)


def rerank_in_order(
    reranker: PairScorer,
    query: str,
    texts: Sequence[str],
    long_documents: str,
    budget_s: float | None,
    depth: int | None,
    show_progress: bool = False,
    batch: int = SEARCH.rerank_batch,
) -> CandidateScores:
    """Scores of the first texts, in order: the first `depth`; else, with `budget_s`, batches of up
    to `batch` texts while the speed measured so far (characters of query and text scored per
    second) says the next one ends within the budget; else all of them."""
    if depth is not None or not budget_s:
        count = len(texts) if depth is None else min(depth, len(texts))
        return score_candidates(reranker, query, texts[:count], long_documents, show_progress)
    parts: list[CandidateScores] = []
    done = chars_done = 0
    started = time.perf_counter()
    with tqdm(total=len(texts), desc="Reranking", unit="doc", disable=not show_progress) as progress:
        while done < len(texts):
            costs = np.cumsum([len(query) + len(text) for text in texts[done : done + batch]])  # chars
            take = len(costs)
            if done:  # after the first batch, take only what the measured speed fits in what is left
                elapsed = time.perf_counter() - started
                left_chars = (budget_s - elapsed) * chars_done / max(elapsed, 1e-9)
                take = int(np.searchsorted(costs, left_chars, side="right"))
                if not take:
                    break
            parts.append(score_candidates(reranker, query, texts[done : done + take], long_documents))
            done += take
            chars_done += int(costs[take - 1])
            progress.update(take)
    return CandidateScores.concatenate(parts)


def reranker_probabilities(reranker: PairScorer, scores: np.ndarray) -> np.ndarray | None:
    """P(relevant) for a model's raw scores (`TokenizedPairScorer`: the engine), by its calibration,
    else the sigmoid (`scores.probability_activation`); None for a scorer whose scores are not a
    model's logits (a teacher, a first stage)."""
    if not isinstance(reranker, TokenizedPairScorer):
        return None
    activation = probability_activation(reranker.calibration)
    return apply_activation(scores, activation, reranker.calibration)


def shown_hits(hits: Sequence[SearchHit], n: int, one_per_file: bool, snippet_width: int) -> list[SearchHit]:
    """The first `n` of `hits` (best first) that are each file's first (with `one_per_file`) and
    whose snippet no earlier hit shows (a file copied twice, overlapping passages)."""
    shown: list[SearchHit] = []
    files: set[str] = set()
    snippets: set[str] = set()
    for hit in hits:
        if len(shown) == n:
            break
        if one_per_file and hit.file in files:
            continue
        snippet = hit.snippet(snippet_width)
        if snippet in snippets:
            continue
        files.add(hit.file)
        snippets.add(snippet)
        shown.append(hit)
    return shown


def _hit(
    doc: Document,
    candidates: dict[str, float],
    first_stage_rank: dict[str, int],
    query: str,
    words: tuple[int, int] | None,
) -> SearchHit:
    """A first-stage hit, ranked later (reranking fills in its score, probability and window)."""
    score = float(candidates[doc.doc_id])
    return SearchHit(
        0,
        doc.doc_id,
        score,
        score,
        first_stage_rank[doc.doc_id],
        doc.title,
        doc.text,
        query=query,
        words=words,
    )


def _text_window(doc: Document, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """A window of the scored text (`title text`) as characters of `doc.text`."""
    if span is None:
        return None
    offset = len(scoring_text(doc)) - len(doc.text)  # the title and its space, when there is a title
    start, end = span
    return max(start - offset, 0), max(end - offset, 0)
