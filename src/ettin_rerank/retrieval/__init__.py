"""First stages over BEIR-format data and a user's own documents.

Heavy dependencies (bm25s, sentence-transformers) load only when used.
"""

from .beir import (
    BeirDataset,
    DatasetIssues,
    Document,
    Qrels,
    Run,
    document_text,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
    write_beir,
    write_corpus,
)
from .bm25 import BM25Config, BM25Index
from .dense import DEFAULT_DENSE_MODEL, DenseIndex
from .hybrid import hybrid_search, reciprocal_rank_fusion
from .index import SearchHit, SearchIndex
from .nano import build_nano_subset
from .user_corpus import load_text_directory, load_user_corpus

__all__ = [
    "DEFAULT_DENSE_MODEL",
    "BM25Config",
    "BM25Index",
    "BeirDataset",
    "DatasetIssues",
    "DenseIndex",
    "Document",
    "Qrels",
    "Run",
    "SearchHit",
    "SearchIndex",
    "build_nano_subset",
    "document_text",
    "hybrid_search",
    "load_beir",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "load_text_directory",
    "load_user_corpus",
    "reciprocal_rank_fusion",
    "write_beir",
    "write_corpus",
]
