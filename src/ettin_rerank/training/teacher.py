"""Teachers: `scoring.PairScorer`s that give one raw fp32 logit per (query, document) pair.

`load_teacher` accepts whatever `Reranker.from_pretrained` loads (Ettin modular
checkpoints, ModernBERT/BERT sequence-classification cross-encoders); for other
Sentence Transformers CrossEncoder directories it falls back to
`sentence_transformers.CrossEncoder` with an identity activation, so the teacher's
raw logits (not sigmoids) are what the student learns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..inference.reranker import Reranker
from ..scoring import PairScorer

logger = logging.getLogger(__name__)


class SentenceTransformersTeacher:
    """A Sentence Transformers `CrossEncoder` with identity activation, as a `PairScorer`."""

    def __init__(self, model, name: str, batch_size: int = 32):
        self.model = model
        self.name = name
        self.batch_size = batch_size

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        pairs = list(pairs)
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(scores, dtype=np.float32).reshape(-1)


HYBRID_BM25_WEIGHT = 0.02  # chosen with benchmarks/hybrid_teacher.py (NDCG@10 over BM25's top 100)
HYBRID_SCALE = 10.0  # spreads cosine differences to a cross-encoder's logit range


def hybrid_score(
    cosine: np.ndarray, bm25: np.ndarray, bm25_weight: float = HYBRID_BM25_WEIGHT, scale: float = HYBRID_SCALE
) -> np.ndarray:
    """The hybrid teacher's score of texts: scale * (cosine + bm25_weight * BM25), as float32."""
    return (scale * (np.asarray(cosine, np.float64) + bm25_weight * np.asarray(bm25, np.float64))).astype(
        np.float32
    )


class HybridTeacher:
    """A first-stage ensemble as teacher (a `PairScorer`), for when no cross-encoder teacher is at hand.

    score = scale * (cosine(bi-encoder) + bm25_weight * BM25), pointwise for each pair,
    with BM25 statistics from the dataset's corpus (so documents must come from it).
    The lexical term adds what a bi-encoder misses: on SciFact test, reranking BM25's
    top 100 by this score gives NDCG@10 0.73, against 0.67 for BM25 and for the
    cosine alone. Spec string: `hybrid:DATASET_DIR`.
    """

    PREFIX = "hybrid:"

    def __init__(
        self,
        dataset_dir: str | Path,
        dense_model: str | None = None,
        bm25_weight: float = HYBRID_BM25_WEIGHT,
        scale: float = HYBRID_SCALE,
    ):
        from ..retrieval.beir import load_corpus
        from ..retrieval.bm25 import BM25Index
        from ..retrieval.dense import DenseIndex

        corpus_path = Path(dataset_dir) / "corpus.jsonl"
        corpus = load_corpus(corpus_path)
        self.name = f"{self.PREFIX}{dataset_dir}"
        self.bm25_weight = bm25_weight
        self.scale = scale
        self.bm25 = BM25Index.build(corpus, show_progress=False)
        self.dense = DenseIndex.build(corpus, model=dense_model, show_progress=False)
        self.row_of_text = {doc.text_for_scoring: row for row, doc in enumerate(corpus.values())}
        self._query_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        queries = [query for query, _ in pairs]
        documents = [document for _, document in pairs]
        try:
            rows = np.array([self.row_of_text[d] for d in documents], dtype=np.int64)
        except KeyError as error:
            raise ValueError(
                f"{self.name}: a document is not in the teacher's corpus: {str(error)[:80]}"
            ) from None
        new = [q for q in dict.fromkeys(queries) if q not in self._query_cache]
        if new:  # length-sorted batches mix many queries: compute each query's signals once per run
            for query, embedding in zip(new, self.dense.encode_queries(new), strict=True):
                self._query_cache[query] = (embedding, self.bm25.score_all(query))
        cosine = np.empty(len(queries), dtype=np.float32)
        lexical = np.empty(len(queries), dtype=np.float32)
        for i, (query, row) in enumerate(zip(queries, rows, strict=True)):
            embedding, bm25 = self._query_cache[query]
            cosine[i] = self.dense.embeddings[row] @ embedding
            lexical[i] = bm25[row]
        return hybrid_score(cosine, lexical, self.bm25_weight, self.scale)


def load_teacher(
    name_or_path: str | Path,
    device: str = "cpu",
    dtype: str = "float32",
    max_length: int | None = None,
    batch_tokens: int | None = None,
) -> PairScorer:
    """Load a teacher, failing with one message that says what each loader objected to.

    The engine's `Reranker` is itself the teacher; its `name` is `name_or_path` as given.
    """
    name = str(name_or_path)
    if name.startswith(HybridTeacher.PREFIX):
        return HybridTeacher(name[len(HybridTeacher.PREFIX) :])
    try:
        return Reranker.from_pretrained(
            name, device=device, dtype=dtype, max_length=max_length, batch_tokens=batch_tokens
        )
    except FileNotFoundError as error:
        raise FileNotFoundError(f"cannot load teacher {name!r}: {error}") from error
    except (ValueError, TypeError, KeyError, OSError) as error:
        if not Path(name).is_dir():
            raise ValueError(f"cannot load teacher {name!r}: {error}") from error
        engine_error = error
    return _sentence_transformers_teacher(name, device, max_length, engine_error)


def _sentence_transformers_teacher(
    name: str, device: str, max_length: int | None, engine_error: Exception
) -> SentenceTransformersTeacher:
    try:
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(name, device=device, activation_fn=torch.nn.Identity(), max_length=max_length)
    except Exception as st_error:  # many loader exception types; report both loaders' reasons
        raise ValueError(
            f"cannot load teacher {name!r}: ettin-rerank's engine said: {engine_error}; "
            f"sentence-transformers' CrossEncoder said: {type(st_error).__name__}: {st_error}"
        ) from st_error
    if int(getattr(model, "num_labels", 1)) != 1:
        raise ValueError(
            f"teacher {name!r} has {model.num_labels} outputs; a teacher must give one logit per pair"
        )
    logger.info("teacher %s loaded with sentence-transformers CrossEncoder (identity activation)", name)
    return SentenceTransformersTeacher(model, name)
