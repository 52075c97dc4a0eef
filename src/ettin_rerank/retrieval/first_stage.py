"""The first stages, each named once: build one by name over a corpus, search it, save and load it.

`FIRST_STAGES` maps every name to its class. Search (`SearchIndex`), evaluation
(`first_stage_run`) and mining (`mine_candidates`) all build through `build_first_stage`,
and every list of first-stage names (CLI choices, error messages) is read from it, so
adding a first stage is one class and one registry entry in this file.

    >>> stage = build_first_stage("hybrid", corpus)
    >>> run = stage.search({"q1": "query"}, k=100)   # {"q1": {doc_id: score, ...}} best first

Heavy dependencies load only when used: bm25s when a BM25 index is built or loaded,
sentence-transformers when a bi-encoder encodes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .beir import Document, Run
from .bm25 import BM25Config, BM25Index
from .dense import DEFAULT_DENSE_MODEL, DenseIndex
from .hybrid import hybrid_search

logger = logging.getLogger(__name__)

Corpus = Mapping[str, Document | str]


@dataclass(frozen=True)
class FirstStageSettings:
    """How a first stage is built; each kind reads only the fields it needs."""

    bm25: BM25Config | None = None  # analysis and scoring for bm25/hybrid (None: BM25Config())
    dense_model: str | None = None  # bi-encoder for dense/hybrid (None: all-MiniLM-L6-v2)
    device: str | None = "cpu"  # where the bi-encoder runs
    cache_dir: str | Path | None = None  # document-embedding cache (None: dense.default_cache_dir())
    use_cache: bool = True  # False: always encode (a saved index keeps its own embeddings)


class FirstStage(Protocol):
    """One first stage over one corpus: what search, evaluation and mining call."""

    name: ClassVar[str]

    @classmethod
    def build(cls, corpus: Corpus, settings: FirstStageSettings, show_progress: bool = True) -> FirstStage:
        """Index `corpus`."""
        ...

    @classmethod
    def load(cls, directory: Path, settings: FirstStageSettings) -> FirstStage:
        """What `save` wrote into `directory`."""
        ...

    @classmethod
    def describe(cls, settings: FirstStageSettings) -> dict[str, Any]:
        """The settings that decide this stage's results, for reports and provenance."""
        ...

    def save(self, directory: Path) -> None: ...

    def search(self, queries: Mapping[str, str], k: int, show_progress: bool = False) -> Run:
        """Top-`k` documents per query, best first; deterministic (ties keep corpus order)."""
        ...


class BM25FirstStage:
    """Lexical: `BM25Index`, saved under DIRECTORY/bm25/."""

    name: ClassVar[str] = "bm25"

    def __init__(self, index: BM25Index):
        self.index = index

    @classmethod
    def build(
        cls, corpus: Corpus, settings: FirstStageSettings, show_progress: bool = True
    ) -> BM25FirstStage:
        return cls(BM25Index.build(corpus, settings.bm25, show_progress=show_progress))

    @classmethod
    def load(cls, directory: Path, settings: FirstStageSettings) -> BM25FirstStage:
        return cls(BM25Index.load(Path(directory) / "bm25"))

    @classmethod
    def describe(cls, settings: FirstStageSettings) -> dict[str, Any]:
        return {"bm25": asdict(settings.bm25 or BM25Config())}

    def save(self, directory: Path) -> None:
        self.index.save(Path(directory) / "bm25")

    def search(self, queries: Mapping[str, str], k: int, show_progress: bool = False) -> Run:
        return self.index.search(queries, k=k, show_progress=show_progress)


class DenseFirstStage:
    """Semantic: a bi-encoder's exact cosine search (`DenseIndex`), saved under DIRECTORY/dense/."""

    name: ClassVar[str] = "dense"

    def __init__(self, index: DenseIndex):
        self.index = index

    @classmethod
    def build(
        cls, corpus: Corpus, settings: FirstStageSettings, show_progress: bool = True
    ) -> DenseFirstStage:
        index = DenseIndex.build(
            corpus,
            model=settings.dense_model,
            device=settings.device,
            cache_dir=settings.cache_dir,
            use_cache=settings.use_cache,
            show_progress=show_progress,
        )
        return cls(index)

    @classmethod
    def load(cls, directory: Path, settings: FirstStageSettings) -> DenseFirstStage:
        return cls(DenseIndex.load(Path(directory) / "dense", device=settings.device))

    @classmethod
    def describe(cls, settings: FirstStageSettings) -> dict[str, Any]:
        return {"dense_model": settings.dense_model or DEFAULT_DENSE_MODEL}

    def save(self, directory: Path) -> None:
        self.index.save(Path(directory) / "dense")

    def search(self, queries: Mapping[str, str], k: int, show_progress: bool = False) -> Run:
        return self.index.search(queries, k=k, show_progress=show_progress)


class HybridFirstStage:
    """Reciprocal-rank fusion of bm25 and dense (`hybrid_search`: each searched to max(k, 100))."""

    name: ClassVar[str] = "hybrid"

    def __init__(self, lexical: BM25FirstStage, semantic: DenseFirstStage):
        self.lexical = lexical
        self.semantic = semantic

    @classmethod
    def build(
        cls, corpus: Corpus, settings: FirstStageSettings, show_progress: bool = True
    ) -> HybridFirstStage:
        return cls(
            BM25FirstStage.build(corpus, settings, show_progress),
            DenseFirstStage.build(corpus, settings, show_progress),
        )

    @classmethod
    def load(cls, directory: Path, settings: FirstStageSettings) -> HybridFirstStage:
        return cls(BM25FirstStage.load(directory, settings), DenseFirstStage.load(directory, settings))

    @classmethod
    def describe(cls, settings: FirstStageSettings) -> dict[str, Any]:
        return {**BM25FirstStage.describe(settings), **DenseFirstStage.describe(settings)}

    def save(self, directory: Path) -> None:
        self.lexical.save(directory)
        self.semantic.save(directory)

    def search(self, queries: Mapping[str, str], k: int, show_progress: bool = False) -> Run:
        return hybrid_search(
            queries, self.lexical.index, self.semantic.index, k=k, show_progress=show_progress
        )


FIRST_STAGES: dict[str, type[FirstStage]] = {
    stage.name: stage for stage in (BM25FirstStage, DenseFirstStage, HybridFirstStage)
}
DEFAULT_FIRST_STAGE = BM25FirstStage.name  # what search, evaluate and mine use unless told


def first_stage_class(name: str) -> type[FirstStage]:
    """The class registered as `name`, or a ValueError listing the names."""
    try:
        return FIRST_STAGES[name]
    except KeyError:
        raise ValueError(f"unknown first stage {name!r}; choose one of {', '.join(FIRST_STAGES)}") from None


def build_first_stage(
    name: str,
    corpus: Corpus,
    settings: FirstStageSettings | None = None,
    show_progress: bool = True,
) -> FirstStage:
    """The first stage `name` (a key of `FIRST_STAGES`) indexed over `corpus`."""
    stage_class = first_stage_class(name)
    if not corpus:
        raise ValueError("cannot index an empty corpus")
    return stage_class.build(corpus, settings or FirstStageSettings(), show_progress)


def load_first_stage(
    name: str, directory: str | Path, settings: FirstStageSettings | None = None
) -> FirstStage:
    """The first stage `name` as saved by its `save(directory)`."""
    return first_stage_class(name).load(Path(directory), settings or FirstStageSettings())
