"""The first stages, each named once: build one by name over a corpus, search it, save and load it.

`FIRST_STAGES` maps every name to its class. Search (`SearchIndex`), evaluation
(`first_stage_run`) and mining (`mine_candidates`) all build through `build_first_stage`,
and every list of first-stage names (CLI choices, error messages) is read from it, so
adding a first stage is one class and one registry entry in this file.

    >>> stage = build_first_stage("hybrid", corpus)
    >>> run = stage.search({"q1": "query"}, k=100)   # {"q1": {doc_id: score, ...}} best first

A first stage is named by a spec: its registry name, then `:ARGUMENT` for a kind that takes
one (`run:FILE`, a TREC run file). `parse_first_stage` reads specs; `first_stage_spec` is the
same check as an argparse `type=`, so a bad spec fails at the command line listing the choices.

Heavy dependencies load only when used: bm25s when a BM25 index is built or loaded,
sentence-transformers when a bi-encoder encodes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .beir import Document, Run
from .bm25 import BM25Config, BM25Index
from .dense import DEFAULT_DENSE_MODEL, DenseIndex
from .hybrid import hybrid_search
from .trec import read_run

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
    run_file: str | Path | None = None  # the TREC run the `run` stage reads (set by the spec run:FILE)


class FirstStage(Protocol):
    """One first stage over one corpus: what search, evaluation and mining call."""

    name: ClassVar[str]
    # The argument a spec gives this kind after "name:", shown as this metavar (None: it takes none),
    # and the `FirstStageSettings` field the argument sets.
    argument: ClassVar[str | None]
    argument_setting: ClassVar[str | None]
    # Whether it can index a corpus and answer any query (`index`/`search`); a run file cannot.
    indexes_corpus: ClassVar[bool]

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
    argument: ClassVar[str | None] = None
    argument_setting: ClassVar[str | None] = None
    indexes_corpus: ClassVar[bool] = True

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
    argument: ClassVar[str | None] = None
    argument_setting: ClassVar[str | None] = None
    indexes_corpus: ClassVar[bool] = True

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
    argument: ClassVar[str | None] = None
    argument_setting: ClassVar[str | None] = None
    indexes_corpus: ClassVar[bool] = True

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


class RunFileFirstStage:
    """A TREC run file's results (`run:FILE`), as Pyserini, Anserini and rank_llm write them.

    It answers the run's own queries, by id, with the run's ranking (`trec.read_run`), so a
    reranker can be evaluated on exactly the candidates a published run retrieved. It cannot
    answer a new query, so it is never saved as a search index.
    """

    name: ClassVar[str] = "run"
    argument: ClassVar[str | None] = "FILE"
    argument_setting: ClassVar[str | None] = "run_file"
    indexes_corpus: ClassVar[bool] = False

    def __init__(self, run: Run, path: Path):
        self.run = run
        self.path = path

    @classmethod
    def build(
        cls, corpus: Corpus, settings: FirstStageSettings, show_progress: bool = True
    ) -> RunFileFirstStage:
        if settings.run_file is None:
            raise ValueError("the run first stage reads a TREC run file: name it as run:FILE")
        path = Path(settings.run_file)
        run = read_run(path)
        # A result the corpus lacks cannot be reranked: the run was made over other documents.
        outside = [(q, d) for q, docs in run.items() for d in docs if d not in corpus]
        if outside:
            query_id, doc_id = outside[0]
            raise ValueError(
                f"{path}: {len(outside)} result(s) name documents missing from the corpus, e.g. {doc_id!r} "
                f"for query {query_id!r}; the run must rank this dataset's documents, by the same ids"
            )
        return cls(run, path)

    @classmethod
    def load(cls, directory: Path, settings: FirstStageSettings) -> RunFileFirstStage:
        raise ValueError(cls._not_an_index())

    @classmethod
    def describe(cls, settings: FirstStageSettings) -> dict[str, Any]:
        return {"run_file": None if settings.run_file is None else str(settings.run_file)}

    def save(self, directory: Path) -> None:
        raise ValueError(self._not_an_index())

    @classmethod
    def _not_an_index(cls) -> str:
        indexing = ", ".join(INDEXING_FIRST_STAGES)
        return f"a TREC run holds results for its own queries only, so it is not a search index; index with {indexing}"

    def search(self, queries: Mapping[str, str], k: int, show_progress: bool = False) -> Run:
        """The run's top `k` for each query id in `queries` (the texts are not read)."""
        found = sum(1 for q in queries if q in self.run)
        if queries and not found:
            raise ValueError(
                f"{self.path}: none of the {len(queries)} queries is in the run (e.g. {next(iter(queries))!r}); "
                "the run must use the dataset's query ids"
            )
        if found < len(queries):
            logger.warning(
                "%s: %d of %d queries have no results in the run; they retrieve nothing",
                self.path,
                len(queries) - found,
                len(queries),
            )
        return {q: dict(islice(self.run.get(q, {}).items(), k)) for q in queries}


FIRST_STAGES: dict[str, type[FirstStage]] = {
    stage.name: stage for stage in (BM25FirstStage, DenseFirstStage, HybridFirstStage, RunFileFirstStage)
}
# The stages `index` can save and `search` can query with any text.
INDEXING_FIRST_STAGES: list[str] = [name for name, stage in FIRST_STAGES.items() if stage.indexes_corpus]
DEFAULT_FIRST_STAGE = BM25FirstStage.name  # what search, evaluate and mine use unless told


def _usage(stage: type[FirstStage]) -> str:
    return stage.name if stage.argument is None else f"{stage.name}:{stage.argument}"


# How the specs read in messages and --help: "bm25, dense, hybrid, run:FILE".
FIRST_STAGE_CHOICES = ", ".join(_usage(stage) for stage in FIRST_STAGES.values())
FIRST_STAGE_METAVAR = "{" + ",".join(_usage(stage) for stage in FIRST_STAGES.values()) + "}"


class FirstStageSpecError(ValueError, argparse.ArgumentTypeError):
    """A spec naming no registered first stage, or with an argument its kind does not take.

    A ValueError to the library's callers; argparse shows its message as it is."""


@dataclass(frozen=True)
class FirstStageSpec:
    """A parsed spec: `run:FILE` -> name "run", argument "FILE"; `bm25` -> name "bm25", no argument."""

    name: str
    argument: str | None = None

    @property
    def stage_class(self) -> type[FirstStage]:
        return FIRST_STAGES[self.name]


def parse_first_stage(spec: str) -> FirstStageSpec:
    """Check a spec against the registry; FirstStageSpecError lists the choices."""
    name, separator, argument = spec.partition(":")
    stage = FIRST_STAGES.get(name)
    if stage is None:
        raise FirstStageSpecError(f"unknown first stage {name!r}; choose one of {FIRST_STAGE_CHOICES}")
    if stage.argument is None and separator:
        raise FirstStageSpecError(f"the first stage {name!r} takes no argument, got {spec!r}")
    if stage.argument is not None and not argument:
        raise FirstStageSpecError(f"the first stage {name!r} needs {stage.argument}: {_usage(stage)}")
    return FirstStageSpec(name, argument if stage.argument is not None else None)


def first_stage_spec(spec: str) -> str:
    """`parse_first_stage` as an argparse `type=`: the spec unchanged when valid."""
    parse_first_stage(spec)
    return spec


def first_stage_class(spec: str) -> type[FirstStage]:
    """The class a spec (`bm25`, `run:FILE`) names, or a ValueError listing the choices."""
    return parse_first_stage(spec).stage_class


def first_stage_settings(spec: str, settings: FirstStageSettings | None = None) -> FirstStageSettings:
    """`settings` with the spec's argument in the field its kind reads (`run:FILE` -> `run_file`)."""
    parsed = parse_first_stage(spec)
    settings = settings or FirstStageSettings()
    field = parsed.stage_class.argument_setting
    if field is None:
        return settings
    named: dict[str, Any] = {field: parsed.argument}  # the field is a name only the spec's class knows
    return replace(settings, **named)


def build_first_stage(
    spec: str,
    corpus: Corpus,
    settings: FirstStageSettings | None = None,
    show_progress: bool = True,
) -> FirstStage:
    """The first stage a spec names (a key of `FIRST_STAGES`, `run:FILE`) over `corpus`."""
    stage_class = first_stage_class(spec)
    if not corpus:
        raise ValueError("cannot index an empty corpus")
    return stage_class.build(corpus, first_stage_settings(spec, settings), show_progress)


def load_first_stage(
    name: str, directory: str | Path, settings: FirstStageSettings | None = None
) -> FirstStage:
    """The first stage `name` as saved by its `save(directory)`."""
    return first_stage_class(name).load(Path(directory), settings or FirstStageSettings())
