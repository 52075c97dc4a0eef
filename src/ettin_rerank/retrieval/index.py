"""A saved search index over a user's corpus: documents + first stage, for `search`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .beir import Document, load_corpus, write_corpus
from .bm25 import BM25Config, BM25Index
from .user_corpus import load_user_corpus

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "dense", "hybrid")
_META_FILE = "ettin_index.json"
_FORMAT_VERSION = 1


@dataclass
class SearchHit:
    rank: int
    doc_id: str
    score: float  # reranker logit when reranked, else the first-stage score
    first_stage_score: float
    first_stage_rank: int  # 1-based position in the first stage's list
    title: str
    text: str

    def snippet(self, width: int = 200) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= width else flat[: width - 3].rstrip() + "..."

    def to_dict(self, snippet_width: int = 200) -> dict:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "score": self.score,
            "first_stage_score": self.first_stage_score,
            "first_stage_rank": self.first_stage_rank,
            "title": self.title,
            "snippet": self.snippet(snippet_width),
        }


class SearchIndex:
    """Documents plus a first stage, saved in one directory::

    INDEX_DIR/ettin_index.json   format and settings
    INDEX_DIR/corpus.jsonl       the documents (BEIR format)
    INDEX_DIR/bm25/              BM25Index (first stage bm25 or hybrid)
    INDEX_DIR/dense/             DenseIndex (first stage dense or hybrid)
    """

    def __init__(self, corpus: dict[str, Document], first_stage: str, bm25=None, dense=None):
        self.corpus = corpus
        self.first_stage = first_stage
        self.bm25 = bm25
        self.dense = dense

    @classmethod
    def build(
        cls,
        corpus: dict[str, Document],
        first_stage: str = "bm25",
        bm25_config: BM25Config | None = None,
        dense_model: str | None = None,
        device: str | None = "cpu",
        show_progress: bool = True,
    ) -> SearchIndex:
        if first_stage not in FIRST_STAGES:
            raise ValueError(f"unknown first stage {first_stage!r}; choose one of {', '.join(FIRST_STAGES)}")
        if not corpus:
            raise ValueError("cannot index an empty corpus")
        bm25 = dense = None
        if first_stage in ("bm25", "hybrid"):
            bm25 = BM25Index.build(corpus, bm25_config, show_progress=show_progress)
        if first_stage in ("dense", "hybrid"):
            from .dense import DenseIndex

            dense = DenseIndex.build(
                corpus, model=dense_model, device=device, use_cache=False, show_progress=show_progress
            )
        return cls(corpus, first_stage, bm25, dense)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_corpus(self.corpus, directory / "corpus.jsonl")
        if self.bm25 is not None:
            self.bm25.save(directory / "bm25")
        if self.dense is not None:
            self.dense.save(directory / "dense")
        meta = {
            "format_version": _FORMAT_VERSION,
            "first_stage": self.first_stage,
            "documents": len(self.corpus),
        }
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def open(cls, path: str | Path, device: str | None = "cpu") -> SearchIndex:
        """A saved index; or, for a folder of .txt/.md files or a corpus.jsonl, a BM25 index built in memory."""
        path = Path(path)
        if (path / _META_FILE).is_file():
            return cls.load(path, device=device)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: pass an index directory (from `ettin-rerank index`), "
                "a folder of .txt/.md files or a corpus.jsonl"
            )
        corpus = load_user_corpus(path)
        logger.info("indexed %d documents from %s in memory (bm25)", len(corpus), path)
        return cls.build(corpus, "bm25", show_progress=False)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = "cpu") -> SearchIndex:
        directory = Path(directory)
        meta_path = directory / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{directory} is not a search index ({_META_FILE} is missing); build one with `ettin-rerank index CORPUS -o {directory}`"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{directory}: index format {meta.get('format_version')} is not supported; rebuild it"
            )
        corpus = load_corpus(directory / "corpus.jsonl")
        first_stage = meta["first_stage"]
        bm25 = BM25Index.load(directory / "bm25") if first_stage in ("bm25", "hybrid") else None
        dense = None
        if first_stage in ("dense", "hybrid"):
            from .dense import DenseIndex

            dense = DenseIndex.load(directory / "dense", device=device)
        return cls(corpus, first_stage, bm25, dense)

    def retrieve(self, query: str, top_k: int = 100) -> dict[str, float]:
        queries = {"q": query}
        if self.first_stage == "bm25":
            run = self.bm25.search(queries, k=top_k, show_progress=False)
        elif self.first_stage == "dense":
            run = self.dense.search(queries, k=top_k, show_progress=False)
        else:
            from .hybrid import hybrid_search

            run = hybrid_search(queries, self.bm25, self.dense, k=top_k, show_progress=False)
        return run["q"]

    def search(
        self, query: str, top_k: int = 100, n: int = 10, reranker=None, batch_tokens: int | None = None
    ) -> list[SearchHit]:
        """First stage top-`top_k`, reranked with `reranker` when given, best `n` returned.

        Equal reranker scores keep first-stage order.
        """
        if not query.strip():
            raise ValueError("the query is empty")
        if n < 1 or top_k < 1:
            raise ValueError("n and top_k must be at least 1")
        candidates = self.retrieve(query, top_k)
        final = dict(candidates)
        if reranker is not None and candidates:
            from ..evaluation.evaluator import rerank_run

            final = rerank_run(
                reranker,
                {"q": query},
                self.corpus,
                {"q": candidates},
                top_k=top_k,
                batch_tokens=batch_tokens,
                show_progress=False,
            )["q"]
        by_score = sorted(candidates, key=lambda doc_id: -candidates[doc_id])  # stable: ties keep order
        first_stage_rank = {doc_id: position for position, doc_id in enumerate(by_score, start=1)}
        hits = []
        for rank, (doc_id, score) in enumerate(list(final.items())[:n], start=1):
            doc = self.corpus[doc_id]
            hits.append(
                SearchHit(
                    rank,
                    doc_id,
                    float(score),
                    float(candidates[doc_id]),
                    first_stage_rank[doc_id],
                    doc.title,
                    doc.text,
                )
            )
        return hits
