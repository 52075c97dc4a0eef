"""Teachers: `scoring.PairScorer`s that give one raw fp32 logit per (query, document) pair.

`load_teacher` accepts whatever `Reranker.from_pretrained` loads (Ettin modular
checkpoints, ModernBERT/BERT sequence-classification cross-encoders); for other
Sentence Transformers CrossEncoder directories it falls back to
`sentence_transformers.CrossEncoder` with an identity activation, so the teacher's
raw logits (not sigmoids) are what the student learns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..inference.reranker import Reranker
from ..scoring import PairScorer
from ..sentences import sentence_windows

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
    with BM25 statistics from the dataset's corpus (so documents must come from it, or from the
    texts made for training that `add_texts` indexes beside it).
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
        self.embeddings = self.dense.embeddings  # (indexed texts, dim), unit rows
        self._texts = {doc_id: doc.text_for_scoring for doc_id, doc in corpus.items()}
        self.row_of_text = {text: row for row, text in enumerate(self._texts.values())}
        self._query_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add_texts(self, texts: Sequence[str]) -> None:
        """Index texts made for training beside the corpus, so they can be scored: BM25 is rebuilt
        over corpus and texts (seconds; its statistics shift by that many documents) and only the
        new texts are embedded (the corpus's embeddings come from the disk cache)."""
        from ..retrieval.bm25 import BM25Index

        new = [text for text in dict.fromkeys(texts) if text not in self.row_of_text]
        if not new:
            return
        first = len(self._texts)
        self._texts.update({f"added:{first + i}": text for i, text in enumerate(new)})
        self.row_of_text.update({text: first + i for i, text in enumerate(new)})
        self.embeddings = np.concatenate([self.embeddings, self.dense.encode_queries(new)])
        self.bm25 = BM25Index.build(self._texts, show_progress=False)
        self._query_cache.clear()  # a query's BM25 scores cover the texts indexed when it was cached

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
        if not queries:
            return np.zeros(0, dtype=np.float32)
        query_embeddings = np.stack([self._query_cache[q][0] for q in queries])  # (pairs, dim)
        lexical = np.array(
            [self._query_cache[q][1][row] for q, row in zip(queries, rows, strict=True)], dtype=np.float32
        )
        cosine = self._cosines(query_embeddings, rows, documents)
        return hybrid_score(cosine, lexical, self.bm25_weight, self.scale)

    def _cosines(
        self, query_embeddings: np.ndarray, rows: np.ndarray, documents: Sequence[str]
    ) -> np.ndarray:
        """Per pair, the bi-encoder cosine of the whole document; query_embeddings: (pairs, dim)."""
        return np.einsum("pd,pd->p", self.embeddings[rows], query_embeddings)


WINDOW_SENTENCES = 3  # the measure: MRR ratio embedded/alone 0.95 by 3-sentence windows, 0.19 whole


class SentenceWindowEmbeddings:
    """Unit embeddings of each text's windows of `sentences` consecutive sentences, encoded once per
    text; `encode` maps texts to unit rows (the bi-encoder that embeds the whole texts)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], sentences: int = WINDOW_SENTENCES):
        self.encode = encode
        self.sentences = sentences
        self._by_text: dict[str, np.ndarray] = {}

    def windows(self, texts: Sequence[str]) -> list[np.ndarray]:
        """(windows of the text, dim) per text; no rows for a text that is its own only window."""
        new = [t for t in dict.fromkeys(texts) if t not in self._by_text]
        pieces = [sentence_windows(t, self.sentences) for t in new]
        flat = [window for piece in pieces for window in piece]
        encoded = self.encode(flat) if flat else np.zeros((0, 0), dtype=np.float32)  # (windows, dim)
        at = 0
        for text, piece in zip(new, pieces, strict=True):
            self._by_text[text] = encoded[at : at + len(piece)]
            at += len(piece)
        return [self._by_text[t] for t in texts]

    def best_cosines(self, query_embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Per pair, the best cosine between the query and a window of the text (-inf without windows)."""
        best = np.full(len(texts), -np.inf)
        for i, (query, windows) in enumerate(zip(query_embeddings, self.windows(texts), strict=True)):
            if len(windows):
                best[i] = float(np.max(windows @ query))
        return best

    def best_window(self, query_embedding: np.ndarray, text: str) -> str:
        """The window of `text` closest to the query (the text itself when it is its only window)."""
        pieces = sentence_windows(text, self.sentences)
        if not pieces:
            return text
        return pieces[int(np.argmax(self.windows([text])[0] @ query_embedding))]


class WindowedHybridTeacher(HybridTeacher):
    """The hybrid teacher reading a text by its best part: scale * (max(cosine of the whole text,
    cosines of its windows of 3 consecutive sentences) + bm25_weight * BM25), on the hybrid
    teacher's scale so that a student distilled from it starts close.

    A whole-text cosine lets the topic of the text around an answer drown it: on the issue's judged
    web questions all-MiniLM-L6-v2's MRR falls from 0.76 to 0.14 when the relevant passage sits
    inside ~200 words of other sentences, and stays at 0.72 scored by its best window.
    Spec string: `hybrid-windows:DATASET_DIR`.
    """

    PREFIX = "hybrid-windows:"

    def __init__(
        self,
        dataset_dir: str | Path,
        dense_model: str | None = None,
        bm25_weight: float = HYBRID_BM25_WEIGHT,
        scale: float = HYBRID_SCALE,
        window_sentences: int = WINDOW_SENTENCES,
    ):
        super().__init__(dataset_dir, dense_model, bm25_weight, scale)
        self.windows = SentenceWindowEmbeddings(self.dense.encode_queries, window_sentences)

    def _cosines(
        self, query_embeddings: np.ndarray, rows: np.ndarray, documents: Sequence[str]
    ) -> np.ndarray:
        whole = super()._cosines(query_embeddings, rows, documents)
        return np.maximum(whole, self.windows.best_cosines(query_embeddings, documents))


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
    if name.startswith(WindowedHybridTeacher.PREFIX):
        return WindowedHybridTeacher(name[len(WindowedHybridTeacher.PREFIX) :])
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
