"""First stages over BEIR-format data and a user's own documents, and reranking their runs.

`first_stage.py` is the one place that knows the first stages (`FIRST_STAGES`, `build_first_stage`).

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
    scoring_text,
    write_beir,
    write_corpus,
)
from .bm25 import BM25Config, BM25Index
from .dense import DEFAULT_DENSE_MODEL, DenseIndex
from .first_stage import (
    DEFAULT_FIRST_STAGE,
    FIRST_STAGES,
    FirstStage,
    FirstStageSettings,
    build_first_stage,
    first_stage_class,
    load_first_stage,
)
from .hybrid import hybrid_search, reciprocal_rank_fusion
from .index import SearchHit, SearchIndex, SearchResults
from .index_files import IndexFormatError
from .nano import build_nano_subset
from .rerank import rerank_run
from .user_corpus import load_text_directory, load_user_corpus

__all__ = [
    "DEFAULT_DENSE_MODEL",
    "DEFAULT_FIRST_STAGE",
    "FIRST_STAGES",
    "BM25Config",
    "BM25Index",
    "BeirDataset",
    "DatasetIssues",
    "DenseIndex",
    "Document",
    "FirstStage",
    "FirstStageSettings",
    "IndexFormatError",
    "Qrels",
    "Run",
    "SearchHit",
    "SearchIndex",
    "SearchResults",
    "build_first_stage",
    "build_nano_subset",
    "document_text",
    "first_stage_class",
    "hybrid_search",
    "load_beir",
    "load_corpus",
    "load_first_stage",
    "load_qrels",
    "load_queries",
    "load_text_directory",
    "load_user_corpus",
    "reciprocal_rank_fusion",
    "rerank_run",
    "scoring_text",
    "write_beir",
    "write_corpus",
]
