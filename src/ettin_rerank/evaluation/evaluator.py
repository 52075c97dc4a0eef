"""Retrieve-then-rerank evaluation on BEIR-format data.

The pieces compose: `first_stage_run` -> `rerank_run` -> `evaluate_run`; `evaluate`
runs them all on one dataset and returns an `EvaluationReport`. The first stages
(`retrieval.first_stage`) and the reranking of a run (`retrieval.rerank`) live in
`retrieval`, shared with `search` and mining; this module times and measures them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..retrieval.beir import BeirDataset, Run, load_beir
from ..retrieval.bm25 import BM25Config
from ..retrieval.first_stage import (
    DEFAULT_FIRST_STAGE,
    FirstStageSettings,
    build_first_stage,
    first_stage_class,
)
from ..retrieval.rerank import rerank_run
from ..scoring import PairScorer
from .metrics import DEFAULT_METRICS, evaluate_run

logger = logging.getLogger(__name__)


def first_stage_run(
    dataset: BeirDataset,
    first_stage: str = DEFAULT_FIRST_STAGE,
    k: int = 100,
    bm25_config: BM25Config | None = None,
    dense_model: str | None = None,
    device: str | None = "cpu",
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> tuple[Run, dict[str, float]]:
    """Index `dataset.corpus` and retrieve `k` documents per query; returns (run, timings in seconds)."""
    settings = FirstStageSettings(
        bm25=bm25_config, dense_model=dense_model, device=device, cache_dir=cache_dir
    )
    start = time.perf_counter()
    stage = build_first_stage(first_stage, dataset.corpus, settings, show_progress=show_progress)
    timings = {"index_s": time.perf_counter() - start}
    start = time.perf_counter()
    run = stage.search(dataset.queries, k=k, show_progress=show_progress)
    timings["retrieve_s"] = time.perf_counter() - start
    return run, timings


@dataclass
class EvaluationReport:
    """Everything an evaluation produced; `to_dict()` is the JSON written by the CLI."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    first_stage: dict[str, float]
    reranked: dict[str, float] | None
    timings: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    dataset: BeirDataset | str | Path,
    reranker: PairScorer | None = None,
    first_stage: str = DEFAULT_FIRST_STAGE,
    top_k: int = 100,
    split: str = "test",
    metrics: Sequence[str] = DEFAULT_METRICS,
    nano: int | None = None,
    nano_max_corpus: int = 5000,
    seed: int = 0,
    bm25_config: BM25Config | None = None,
    dense_model: str | None = None,
    device: str | None = "cpu",
    cache_dir: str | Path | None = None,
    run: Run | None = None,
    show_progress: bool = True,
) -> EvaluationReport:
    """First stage (top max(`top_k`, 100)), then rerank its top `top_k` with `reranker`.

    `dataset` is a loaded `BeirDataset` or a BEIR directory (read for `split`).
    `nano=N` evaluates a NanoBEIR-style subset of N queries (see `build_nano_subset`).
    `run` supplies a precomputed first-stage run instead of retrieving.
    With `reranker=None` only the first stage is evaluated (`reranked` is None).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    stage_class = first_stage_class(first_stage)  # an unknown name fails before any loading
    if not isinstance(dataset, BeirDataset):
        dataset = load_beir(dataset, split)
    if nano is not None:
        from ..retrieval.nano import build_nano_subset

        dataset = build_nano_subset(
            dataset, n_queries=nano, max_corpus=nano_max_corpus, seed=seed, show_progress=show_progress
        )

    empty_queries = [q for q, text in dataset.queries.items() if not text.strip()]
    if empty_queries:
        logger.warning(
            "%d quer(y/ies) have empty text, e.g. %r; they retrieve nothing and score 0",
            len(empty_queries),
            empty_queries[0],
        )
    evaluated = [q for q, judged in dataset.qrels.items() if any(s > 0 for s in judged.values())]
    if not evaluated:
        raise ValueError(
            f"{dataset.name or 'the dataset'}: no query of split {dataset.split!r} has a relevant judgement; nothing to evaluate"
        )

    depth = max(top_k, 100)
    timings: dict[str, float] = {}
    if run is None:
        run, stage_timings = first_stage_run(
            dataset,
            first_stage,
            depth,
            bm25_config,
            dense_model,
            device,
            cache_dir,
            show_progress=show_progress,
        )
        timings.update(stage_timings)
    first_metrics = evaluate_run(dataset.qrels, run, metrics)

    reranked_metrics = None
    if reranker is not None:
        start = time.perf_counter()
        reranked_run = rerank_run(
            reranker,
            dataset.queries,
            dataset.corpus,
            run,
            top_k=top_k,
            show_progress=show_progress,
        )
        timings["rerank_s"] = time.perf_counter() - start
        pairs = sum(len(d) for d in reranked_run.values())
        timings["rerank_pairs_per_s"] = pairs / timings["rerank_s"] if timings["rerank_s"] > 0 else math.nan
        reranked_metrics = evaluate_run(dataset.qrels, reranked_run, metrics)

    settings: dict[str, Any] = {
        "first_stage": first_stage,
        "top_k": top_k,
        "retrieval_depth": depth,
        "reranker": reranker.name if reranker is not None else None,
        "nano": nano,
        "seed": seed if nano is not None else None,
        "metrics": list(metrics),
    }
    settings.update(stage_class.describe(FirstStageSettings(bm25=bm25_config, dense_model=dense_model)))
    counts = {
        "documents": len(dataset.corpus),
        "queries_judged": len(dataset.qrels),
        "queries_evaluated": len(evaluated),
        "queries_skipped_no_relevant": len(dataset.qrels) - len(evaluated),
        "queries_empty_text": len(empty_queries),
        **dataset.issues.to_dict(),
    }
    return EvaluationReport(
        dataset={"name": dataset.name, "split": dataset.split},
        settings=settings,
        first_stage=first_metrics,
        reranked=reranked_metrics,
        timings=timings,
        counts=counts,
    )
