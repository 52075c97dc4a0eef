"""First-stage retrieval and search over a user's documents: the dense model, passages, search depth."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DENSE_MODEL = "all-MiniLM-L6-v2"  # the bi-encoder of the dense and hybrid first stages


@dataclass(frozen=True)
class PassageSettings:
    """How long files are cut into passages at index time."""

    # Words per passage; a file of at most this many is one document; 0: never cut. Sized so that a
    # passage and a question fit the bundled reranker's 256-token window, one window per candidate:
    # on the folder of benchmarks/folder_search.py (the five shared corpora) 120 words are a median
    # 156 tokens and 95% at most 216 (200 words: median 258, two or three windows each).
    words: int = 120
    overlap: int = 30  # words consecutive passages share, so text across a cut is whole in one of them

    def __post_init__(self) -> None:
        if self.words < 0:
            raise ValueError(f"passage words must be >= 0 (0: one document per file), got {self.words}")
        if self.words and not 0 <= self.overlap < self.words:
            raise ValueError(
                f"passage overlap must be at least 0 and below the passage's {self.words} words, got {self.overlap}"
            )


@dataclass(frozen=True)
class SearchOptions:
    """What `SearchIndex.search` decides when a caller names nothing (its parameters' defaults)."""

    top_k: int = 100  # first-stage candidates reranked
    n: int = 10  # results returned
    long_documents: str = "chunk"  # a loading.LONG_DOCUMENT_MODES entry


SEARCH = SearchOptions()
