"""BM25 first stage over `bm25s`.

Defaults (porter stemmer, Lucene's 33 English stopwords, k1=0.9, b=0.4, Lucene
scoring) score NDCG@10 0.671 on BEIR SciFact test, the setting closest to BEIR's
published Elasticsearch figure (0.665) among those measured (see docs/evaluation.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .beir import Document, Run, scoring_text
from .index_files import read_index_metadata, write_index_metadata
from .queries import Queries, keyed_queries

logger = logging.getLogger(__name__)

_META_FILE = "ettin_bm25.json"
_FORMAT_VERSION = 1
_REMEDY = "build and save one with BM25Index.build(...).save(directory)"


@dataclass(frozen=True)
class BM25Config:
    """How text is analysed and scored. Saved with the index so queries match."""

    stemmer: str | None = "porter"  # a PyStemmer algorithm ("porter", "english", ...) or None
    stopwords: str | None = "en"  # "en" (Lucene's English list), another bm25s language code, or None
    k1: float = 0.9  # term-frequency saturation
    b: float = 0.4  # length normalisation
    method: str = "lucene"  # bm25s scoring variant
    lowercase: bool = True


@functools.cache
def ignored_words() -> frozenset[str]:
    """The words the default BM25 ignores (Lucene's English stopwords): "the", "of", "is", ..."""
    return frozenset(_import_bm25s().stopwords.STOPWORDS_EN)


def _import_bm25s():
    """bm25s, with the DEBUG level it sets on its own logger at import undone.

    Log levels are the application's choice (the CLI's `-v`), not a dependency's.
    """
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


def _stemmer(config: BM25Config):
    if config.stemmer is None:
        return None
    import Stemmer

    try:
        stemmer = Stemmer.Stemmer(config.stemmer)
    except KeyError as error:
        raise ValueError(
            f"unknown stemmer {config.stemmer!r}; choose one of {', '.join(Stemmer.algorithms())} or None"
        ) from error
    return stemmer.stemWords


def _tokenize(texts: Sequence[str], config: BM25Config, show_progress: bool):
    return _import_bm25s().tokenize(
        list(texts),
        lower=config.lowercase,
        stopwords=config.stopwords,
        stemmer=_stemmer(config),
        show_progress=show_progress,
        return_ids=False,
    )


class BM25Index:
    """A BM25 index over documents with string ids.

    >>> index = BM25Index.build(corpus)          # {doc_id: Document} or {doc_id: text}
    >>> run = index.search({"q1": "query"}, k=100)   # {"q1": {doc_id: score, ...}} best first
    """

    def __init__(self, model, doc_ids: list[str], config: BM25Config):
        self._model = model
        self.doc_ids = doc_ids
        self.config = config

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(
        cls,
        corpus: Mapping[str, Document | str],
        config: BM25Config | None = None,
        show_progress: bool = True,
    ) -> BM25Index:
        bm25s = _import_bm25s()
        config = config or BM25Config()
        if not corpus:
            raise ValueError("cannot build a BM25 index over an empty corpus")
        doc_ids = list(corpus)
        texts = [scoring_text(d) for d in corpus.values()]
        logger.info("indexing %d documents with BM25 (%s)", len(texts), config)
        # Keep empty token lists: an all-stopword document stays in the index, unretrievable.
        tokens = _tokenize(texts, config, show_progress)
        model = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        model.index(tokens, show_progress=show_progress)
        return cls(model, doc_ids, config)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._model.save(str(directory), show_progress=False)
        fields = {"config": asdict(self.config), "doc_ids": self.doc_ids}
        write_index_metadata(directory, _META_FILE, _FORMAT_VERSION, fields)
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> BM25Index:
        bm25s = _import_bm25s()
        directory = Path(directory)
        meta = read_index_metadata(
            directory, _META_FILE, "BM25 index", _FORMAT_VERSION, ("config", "doc_ids"), _REMEDY
        )
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        return cls(model, list(meta["doc_ids"]), BM25Config(**meta["config"]))

    def score_all(self, query: str) -> np.ndarray:
        """BM25 score of `query` against every indexed document, in `doc_ids` order (zeros if no term matches)."""
        tokens = [
            t for t in _tokenize([query], self.config, show_progress=False)[0] if t in self._model.vocab_dict
        ]
        if not tokens:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def search(
        self,
        queries: Queries,
        k: int = 100,
        show_progress: bool = True,
        n_threads: int = 0,
    ) -> Run:
        """Top-`k` documents for each query, best first; equal scores keep index order.

        `queries` is {query_id: text} or a list of texts (ids become "0", "1", ...).
        Documents with a zero score (no query term) are not returned.
        """
        queries = keyed_queries(queries, k)
        query_ids = list(queries)
        if not query_ids:
            return {}
        k_eff = min(k, len(self.doc_ids))
        tokens = _tokenize([queries[q] for q in query_ids], self.config, show_progress=False)
        # Vocabulary lookup: unknown terms are dropped (they cannot match anything).
        vocab = self._model.vocab_dict
        known = [[t for t in query if t in vocab] for query in tokens]
        nonempty = [i for i, t in enumerate(known) if t]
        run: Run = {query_ids[i]: {} for i, t in enumerate(known) if not t}
        if nonempty:
            indices, scores = self._model.retrieve(
                [known[i] for i in nonempty],
                k=k_eff,
                show_progress=show_progress,
                n_threads=n_threads,
            )
            for row, i in enumerate(nonempty):
                doc_index = np.asarray(indices[row])
                doc_score = np.asarray(scores[row], dtype=np.float64)
                # Deterministic order: score descending, then index position ascending.
                order = np.lexsort((doc_index, -doc_score))
                run[query_ids[i]] = {
                    self.doc_ids[int(doc_index[j])]: float(doc_score[j]) for j in order if doc_score[j] > 0
                }
        return {q: run[q] for q in query_ids}
