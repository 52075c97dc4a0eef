"""First-stage retrieval and search over a user's documents: the dense model, passages, search depth."""

from __future__ import annotations

import os
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

    top_k: int = 100  # first-stage candidates, the most that are reranked
    n: int = 10  # results returned
    long_documents: str = "chunk"  # a loading.LONG_DOCUMENT_MODES entry
    # Seconds of reranking (tokenizing and scoring), spent on candidates in first-stage order.
    # 1 s keeps a 2-core CPU interactive: the bundled model reranks the top 8 (200-word passages
    # of two windows each, the machine shared) to about 35 (one window each) in that time, which
    # reorders the top of a BM25 list, and the folder is read while the model loads, so a query on
    # a 150-file folder answers in under 5 s. 0 or None: no limit, every candidate is reranked.
    budget_s: float | None = 1.0
    depth: int | None = (
        None  # rerank exactly this many candidates (overrides budget_s); None: the budget decides
    )
    rerank_batch: int = (
        8  # candidates per measured batch: small, so the budget is overrun by at most one batch
    )
    one_per_file: bool = True  # a file's best passage only; False: every passage (`--passages`)
    snippet_width: int = 200  # characters of the excerpt shown (and compared: no two results show the same)


SEARCH = SearchOptions()

# A reranked result's label, from its probability of relevance (the model's calibration, else
# the sigmoid): the first cut point it reaches, else "low". 0.5: the model thinks relevant more
# likely than not; 0.2: worth a look (a calibrated probability of 0.2-0.5 is often a partial or
# an indirect answer); below 0.2, rarely the answer.
RELEVANCE_LABELS: tuple[tuple[str, float], ...] = (("high", 0.5), ("medium", 0.2))
LOWEST_RELEVANCE_LABEL = "low"


KEEP_LOADED_ENV = "ETTIN_RERANK_KEEP_LOADED"  # minutes; overrides ResidentSettings.keep_loaded_minutes


@dataclass(frozen=True)
class ResidentSettings:
    """The process `search` leaves behind so the next search does not load the model again."""

    # Minutes an idle resident process keeps the model loaded; 0: none is started. A later search
    # on 2 cores otherwise spends about 2 s importing torch and loading the model before it reranks
    # (benchmarks/folder_search.py); 10 minutes covers a person asking question after question.
    keep_loaded_minutes: float = 10.0
    loaded_indexes_kept: int = 2  # saved indexes a process keeps in memory, the last ones opened


def keep_loaded_minutes() -> float:
    """`--keep-loaded`'s default: $ETTIN_RERANK_KEEP_LOADED when set (0 turns residents off, as the
    test suite does), else `ResidentSettings.keep_loaded_minutes`."""
    override = os.environ.get(KEEP_LOADED_ENV)
    if override is None or not override.strip():
        return ResidentSettings.keep_loaded_minutes
    try:
        return float(override)
    except ValueError:
        raise ValueError(f"${KEEP_LOADED_ENV} must be a number of minutes, got {override!r}") from None


RESIDENT = ResidentSettings()
