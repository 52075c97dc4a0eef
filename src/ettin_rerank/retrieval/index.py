"""A saved search index over a user's corpus: documents + first stage, for `search`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..scoring import PairScorer
from .beir import Document, load_corpus, write_corpus
from .bm25 import BM25Config
from .first_stage import (
    DEFAULT_FIRST_STAGE,
    FirstStage,
    FirstStageSettings,
    build_first_stage,
    load_first_stage,
)
from .rerank import rerank_run
from .user_corpus import load_user_corpus

logger = logging.getLogger(__name__)
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
    INDEX_DIR/...                what the first stage saves (bm25/, dense/; see first_stage.py)
    """

    def __init__(self, corpus: dict[str, Document], first_stage: FirstStage):
        self.corpus = corpus
        self.first_stage = first_stage

    @classmethod
    def build(
        cls,
        corpus: dict[str, Document],
        first_stage: str = DEFAULT_FIRST_STAGE,
        bm25_config: BM25Config | None = None,
        dense_model: str | None = None,
        device: str | None = "cpu",
        show_progress: bool = True,
    ) -> SearchIndex:
        # The index keeps its own embeddings, so the shared embedding cache is not written.
        settings = FirstStageSettings(
            bm25=bm25_config, dense_model=dense_model, device=device, use_cache=False
        )
        return cls(corpus, build_first_stage(first_stage, corpus, settings, show_progress=show_progress))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_corpus(self.corpus, directory / "corpus.jsonl")
        self.first_stage.save(directory)
        meta = {
            "format_version": _FORMAT_VERSION,
            "first_stage": self.first_stage.name,
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
        first_stage = load_first_stage(meta["first_stage"], directory, FirstStageSettings(device=device))
        return cls(corpus, first_stage)

    def retrieve(self, query: str, top_k: int = 100) -> dict[str, float]:
        return self.first_stage.search({"q": query}, k=top_k)["q"]

    def search(
        self, query: str, top_k: int = 100, n: int = 10, reranker: PairScorer | None = None
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
            final = rerank_run(
                reranker, {"q": query}, self.corpus, {"q": candidates}, top_k=top_k, show_progress=False
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
