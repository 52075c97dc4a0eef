"""Retrieve-then-rerank evaluation on BEIR-format data.

The pieces compose: `first_stage_run` -> `drop_identical_ids` -> `rerank_run` ->
`evaluate_run`; `evaluate` runs them all on one dataset and returns an `EvaluationReport`.
The first stages (`retrieval.first_stage`, a TREC run file among them) and the reranking of a
run (`retrieval.rerank`) live in `retrieval`, shared with `search` and mining; this module
times and measures them, and is the one place that applies BEIR's identical-id rule.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..retrieval.beir import BeirDataset, Document, Qrels, Run, load_beir, scoring_text
from ..retrieval.bm25 import BM25Config
from ..retrieval.first_stage import (
    DEFAULT_FIRST_STAGE,
    FirstStage,
    FirstStageSettings,
    build_first_stage,
    first_stage_class,
    first_stage_settings,
)
from ..retrieval.rerank import rerank_run
from ..retrieval.trec import write_run
from ..scoring import PairScorer
from .metrics import DEFAULT_METRICS, evaluate_run

logger = logging.getLogger(__name__)


def first_stage_run(
    dataset: BeirDataset,
    first_stage: str = DEFAULT_FIRST_STAGE,
    k: int = 100,
    settings: FirstStageSettings | None = None,
    show_progress: bool = True,
) -> tuple[Run, dict[str, float]]:
    """Index `dataset.corpus` and retrieve `k` documents per query; returns (run, timings in seconds)."""
    start = time.perf_counter()
    stage = build_first_stage(
        first_stage, dataset.corpus, settings or FirstStageSettings(), show_progress=show_progress
    )
    timings = {"index_s": time.perf_counter() - start}
    start = time.perf_counter()
    run = stage.search(dataset.queries, k=k, show_progress=show_progress)
    timings["retrieve_s"] = time.perf_counter() - start
    return run, timings


def drop_identical_ids(
    run: Run, queries: Mapping[str, str], corpus: Mapping[str, Document | str], qrels: Qrels | None = None
) -> tuple[Run, int, int]:
    """BEIR's rule, where it means what BEIR means: a result that is the query itself is dropped.

    On datasets whose queries are corpus documents (ArguAna, Quora), every query retrieves
    itself first; BEIR's and MTEB's evaluators drop a result whose id equals the query's id.
    Classic collections (Cranfield, Vaswani) number queries and documents separately, so an
    equal id there is a coincidence (Cranfield query 225's answer is document 225): a result is
    dropped only when its id equals the query's AND its text is the query's text (whitespace
    folded; the document's title may precede it). Returns (run, results dropped, dropped results
    that `qrels` judge relevant).
    """
    kept: Run = {}
    dropped = judged_relevant = 0
    for query_id, scores in run.items():
        if query_id in scores and _is_the_query(queries.get(query_id), corpus.get(query_id)):
            dropped += 1
            judged_relevant += (qrels or {}).get(query_id, {}).get(query_id, 0) > 0
            scores = {d: s for d, s in scores.items() if d != query_id}
        kept[query_id] = dict(scores)
    return kept, dropped, judged_relevant


def _is_the_query(query: str | None, document: Document | str | None) -> bool:
    """Whether a corpus entry is the query itself: the same text, with or without its title."""
    if query is None or document is None:
        return False
    texts = {scoring_text(document)} | ({document.text} if isinstance(document, Document) else set())
    return _folded(query) in {_folded(text) for text in texts}


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _first_stage_copy_path(path: Path) -> Path:
    """Where `--save-run OUT` puts the first stage's run: OUT.first-stage beside OUT."""
    return path.with_name(f"{path.stem}.first-stage{path.suffix}")


@dataclass
class EvaluationReport:
    """Everything an evaluation produced; `to_dict()` is the JSON written by the CLI."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    first_stage: dict[str, float]
    reranked: dict[str, float] | None
    timings: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    runs: dict[str, str] = field(
        default_factory=dict
    )  # TREC run files written: "reranked"/"first_stage" -> path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationSettings:
    """How `evaluate` retrieves, reranks and reports; the `evaluate` command's flags set these fields."""

    first_stage: str = DEFAULT_FIRST_STAGE  # spec: bm25, dense, hybrid, or run:FILE to rerank a TREC run
    top_k: int = 100  # documents per query the reranker scores (the first stage retrieves max(top_k, 100))
    split: str = "test"  # qrels split read from a dataset directory
    metrics: Sequence[str] = DEFAULT_METRICS  # measured before and after reranking
    nano: int | None = None  # evaluate a NanoBEIR-style subset of this many queries (`build_nano_subset`)
    nano_max_corpus: int = 5000  # corpus cap of the nano subset
    seed: int = 0  # seed of the nano subset's sample
    bm25_config: BM25Config | None = None  # analysis and scoring of bm25/hybrid (None: BM25Config())
    dense_model: str | None = None  # bi-encoder of dense/hybrid (None: the default one)
    device: str | None = "cpu"  # where the bi-encoder runs
    cache_dir: str | Path | None = None  # document-embedding cache (None: dense.default_cache_dir())
    qrels: str | Path | None = None  # TREC qrels file read in place of qrels/<split>.tsv, graded as given
    keep_identical_ids: bool = False  # True: keep a result that is its query (see `drop_identical_ids`)
    save_run: str | Path | None = None  # TREC run of the final ranking (the first stage's beside it)

    @property
    def retrieval_depth(self) -> int:
        """Documents the first stage retrieves per query: enough for recall@100 whatever `top_k`."""
        return max(self.top_k, 100)

    def first_stage_settings(self) -> FirstStageSettings:
        """The one `FirstStageSettings` the first stage is built from and described by."""
        return FirstStageSettings(
            bm25=self.bm25_config, dense_model=self.dense_model, device=self.device, cache_dir=self.cache_dir
        )


@dataclass
class _FirstStageResult:
    """The retrieve step's output: the run that is measured and reranked, and how it was made."""

    run: Run
    timings: dict[str, float]
    retrieved_here: bool  # False: the caller supplied the run
    identical_dropped: int = 0
    identical_judged_relevant: int = 0


@dataclass
class _RerankResult:
    """The rerank step's output."""

    reranker: str  # the reranker's name
    run: Run
    timings: dict[str, float]
    compute_mode: dict[str, Any] | None  # device, dtype, int8...: a model's `Reranker.compute_mode()`


def evaluate(
    dataset: BeirDataset | str | Path,
    reranker: PairScorer | None = None,
    settings: EvaluationSettings | None = None,
    run: Run | None = None,
    show_progress: bool = True,
) -> EvaluationReport:
    """First stage (top `settings.retrieval_depth`), then rerank its top `top_k` with `reranker`.

    `dataset` is a loaded `BeirDataset` or a BEIR directory (read for `settings.split`, or with
    the TREC-format `settings.qrels` file in place of `qrels/<split>.tsv`; graded judgements are
    NDCG's gains). `settings.first_stage` is a spec: `bm25`, `dense`, `hybrid`, or `run:FILE` to
    rerank a TREC run. `settings.nano=N` evaluates a NanoBEIR-style subset of N queries (see
    `build_nano_subset`).
    `run` supplies a precomputed first-stage run instead of retrieving.
    A result whose id is its query's id is dropped before anything is scored
    (`drop_identical_ids`) unless `settings.keep_identical_ids`.
    `settings.save_run=OUT` writes the final ranking (reranked, or the first stage's when there
    is no reranker) as a TREC run to OUT, and the first stage's to OUT.first-stage beside it
    when it was retrieved here.
    With `reranker=None` only the first stage is evaluated (`reranked` is None).
    """
    settings = settings or EvaluationSettings()
    stage_class = _checked_first_stage(settings)
    dataset = _evaluation_dataset(dataset, settings)
    first = _retrieve(dataset, settings, run)
    reranked = None
    if reranker is not None:
        reranked = _rerank(reranker, dataset, first.run, settings.top_k, show_progress)
    return _report(dataset, settings, stage_class, first, reranked)


def _checked_first_stage(settings: EvaluationSettings) -> type[FirstStage]:
    """The first stage's class, once the settings are known to combine; fails before any loading."""
    if settings.top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {settings.top_k}")
    stage_class = first_stage_class(settings.first_stage)  # an unknown name fails here
    if settings.nano is not None and not stage_class.indexes_corpus:
        raise ValueError(
            f"--nano evaluates a subset of the corpus, and {settings.first_stage} ranks the whole of it: use one or the other"
        )
    return stage_class


def _evaluation_dataset(dataset: BeirDataset | str | Path, settings: EvaluationSettings) -> BeirDataset:
    """The dataset to evaluate: loaded, cut to its nano subset if asked, with something to measure."""
    if not isinstance(dataset, BeirDataset):
        dataset = load_beir(dataset, settings.split, qrels_file=settings.qrels)
    elif settings.qrels is not None:
        raise ValueError("qrels= reads a qrels file for a dataset directory; this dataset is already loaded")
    if settings.nano is not None:
        from ..retrieval.nano import build_nano_subset

        dataset = build_nano_subset(
            dataset,
            n_queries=settings.nano,
            max_corpus=settings.nano_max_corpus,
            seed=settings.seed,
            show_progress=False,
        )
    empty_queries = _empty_queries(dataset)
    if empty_queries:
        logger.warning(
            "%d quer(y/ies) have empty text, e.g. %r; they retrieve nothing and score 0",
            len(empty_queries),
            empty_queries[0],
        )
    if not _evaluated_queries(dataset):
        raise ValueError(
            f"{dataset.name or 'the dataset'}: no query of split {dataset.split!r} has a relevant judgement; nothing to evaluate"
        )
    return dataset


def _empty_queries(dataset: BeirDataset) -> list[str]:
    return [q for q, text in dataset.queries.items() if not text.strip()]


def _evaluated_queries(dataset: BeirDataset) -> list[str]:
    """The queries the metrics average over: those with a relevant judgement."""
    return [q for q, judged in dataset.qrels.items() if any(s > 0 for s in judged.values())]


def _retrieve(dataset: BeirDataset, settings: EvaluationSettings, run: Run | None) -> _FirstStageResult:
    """The retrieve step: the first stage's run (or the given one), BEIR's identical-id rule applied."""
    if run is not None:
        first = _FirstStageResult(run=run, timings={}, retrieved_here=False)
    else:
        retrieved, timings = first_stage_run(
            dataset,
            settings.first_stage,
            settings.retrieval_depth,
            settings.first_stage_settings(),
            show_progress=False,  # other libraries' bars (bm25s, sentence-transformers); ours is the rerank bar
        )
        first = _FirstStageResult(run=retrieved, timings=timings, retrieved_here=True)
    if not settings.keep_identical_ids:
        first.run, first.identical_dropped, first.identical_judged_relevant = drop_identical_ids(
            first.run, dataset.queries, dataset.corpus, dataset.qrels
        )
        if first.identical_judged_relevant:
            logger.warning(
                "%d dropped result(s) share their query's id and are judged relevant to it: query and "
                "document ids look like separate numberings here; pass --keep-identical-ids to keep them",
                first.identical_judged_relevant,
            )
    return first


def _rerank(
    reranker: PairScorer, dataset: BeirDataset, run: Run, top_k: int, show_progress: bool
) -> _RerankResult:
    """The rerank step: `run`'s top `top_k` per query reordered by `reranker`, timed."""
    start = time.perf_counter()
    reranked = rerank_run(
        reranker, dataset.queries, dataset.corpus, run, top_k=top_k, show_progress=show_progress
    )
    seconds = time.perf_counter() - start
    pairs = sum(len(d) for d in reranked.values())
    timings = {"rerank_s": seconds, "rerank_pairs_per_s": pairs / seconds if seconds > 0 else math.nan}
    # a model scorer says how it computes (`Reranker.compute_mode`); a teacher or a test scorer need not
    describe = getattr(reranker, "compute_mode", None)
    return _RerankResult(reranker.name, reranked, timings, describe() if callable(describe) else None)


def _report(
    dataset: BeirDataset,
    settings: EvaluationSettings,
    stage_class: type[FirstStage],
    first: _FirstStageResult,
    reranked: _RerankResult | None,
) -> EvaluationReport:
    """The report step: metrics before and after reranking, the runs saved, settings and counts."""
    return EvaluationReport(
        dataset={"name": dataset.name, "split": dataset.split},
        settings=_reported_settings(settings, stage_class, reranked),
        first_stage=evaluate_run(dataset.qrels, first.run, settings.metrics),
        reranked=evaluate_run(dataset.qrels, reranked.run, settings.metrics) if reranked else None,
        timings={**first.timings, **(reranked.timings if reranked else {})},
        counts=_counts(dataset, first),
        runs=_save_runs(settings.save_run, stage_class, first, reranked),
    )


def _reported_settings(
    settings: EvaluationSettings, stage_class: type[FirstStage], reranked: _RerankResult | None
) -> dict[str, Any]:
    """What decided the figures: the evaluation's settings and the first stage's own."""
    described = first_stage_settings(settings.first_stage, settings.first_stage_settings())
    return {
        "first_stage": settings.first_stage,
        "top_k": settings.top_k,
        "retrieval_depth": settings.retrieval_depth,
        "reranker": reranked.reranker if reranked else None,
        "reranker_compute": reranked.compute_mode if reranked else None,
        "nano": settings.nano,
        "seed": settings.seed if settings.nano is not None else None,
        "metrics": list(settings.metrics),
        "qrels": str(settings.qrels) if settings.qrels is not None else None,
        "keep_identical_ids": settings.keep_identical_ids,
        **stage_class.describe(described),
    }


def _counts(dataset: BeirDataset, first: _FirstStageResult) -> dict[str, int]:
    evaluated = len(_evaluated_queries(dataset))
    return {
        "documents": len(dataset.corpus),
        "queries_judged": len(dataset.qrels),
        "queries_evaluated": evaluated,
        "queries_skipped_no_relevant": len(dataset.qrels) - evaluated,
        "queries_empty_text": len(_empty_queries(dataset)),
        "identical_ids_dropped": first.identical_dropped,
        "identical_ids_judged_relevant": first.identical_judged_relevant,
        **dataset.issues.to_dict(),
    }


def _save_runs(
    save_run: str | Path | None,
    stage_class: type[FirstStage],
    first: _FirstStageResult,
    reranked: _RerankResult | None,
) -> dict[str, str]:
    """`save_run=OUT`: the final ranking to OUT, and a retrieved first stage's to OUT.first-stage."""
    runs: dict[str, str] = {}
    if save_run is None:
        return runs
    save_run = Path(save_run)
    if reranked is None:
        runs["first_stage"] = str(write_run(first.run, save_run, tag=stage_class.name))
        return runs
    runs["reranked"] = str(write_run(reranked.run, save_run))
    if first.retrieved_here and stage_class.indexes_corpus:  # a run file's copy would add nothing
        first_path = _first_stage_copy_path(save_run)
        runs["first_stage"] = str(write_run(first.run, first_path, tag=stage_class.name))
    return runs
