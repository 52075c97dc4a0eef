"""Retrieve-then-rerank evaluation on BEIR-format data.

The pieces compose: `first_stage_run` -> `rerank_run` -> `evaluate_run`; `evaluate`
runs them all on one dataset and returns an `EvaluationReport`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from ..retrieval.beir import BeirDataset, Document, Run, load_beir
from ..retrieval.bm25 import BM25Config
from .metrics import DEFAULT_METRICS, evaluate_run

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "dense", "hybrid")


class PairScorer(Protocol):
    """What `rerank_run` needs from a reranker (`ettin_rerank.Reranker` fits)."""

    def predict(self, pairs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray: ...


def _doc_text(doc: Document | str) -> str:
    return doc.text_for_scoring if isinstance(doc, Document) else str(doc)


def rerank_run(
    reranker: PairScorer,
    queries: Mapping[str, str],
    corpus: Mapping[str, Document | str],
    run: Mapping[str, Mapping[str, float]],
    top_k: int = 100,
    batch_tokens: int | None = None,
    pairs_per_call: int = 4096,
    show_progress: bool = True,
) -> Run:
    """Rescore each query's first `top_k` documents of `run` with `reranker`.

    The result holds, per query, those `top_k` documents ordered by reranker score
    (raw logits, descending); equal scores keep first-stage order. Documents below
    `top_k` are dropped, and relevant documents the first stage missed are not added.
    Queries are scored in groups of about `pairs_per_call` pairs so the engine can
    batch across queries.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    missing_queries = [q for q in run if q not in queries]
    if missing_queries:
        raise ValueError(f"{len(missing_queries)} run quer(y/ies) have no text, e.g. {missing_queries[0]!r}")
    candidates = {q: list(run[q])[:top_k] for q in run}
    for query_id, doc_ids in candidates.items():
        unknown = [d for d in doc_ids if d not in corpus]
        if unknown:
            raise ValueError(f"query {query_id!r}: document {unknown[0]!r} from the run is not in the corpus")
    kwargs: dict[str, Any] = {"show_progress_bar": False}
    if batch_tokens is not None:
        kwargs["batch_tokens"] = batch_tokens
    reranked: Run = {}
    total = sum(len(d) for d in candidates.values())
    group: list[str] = []
    group_pairs = 0

    def flush() -> None:
        pairs = [(queries[q], _doc_text(corpus[d])) for q in group for d in candidates[q]]
        scores = (
            np.asarray(reranker.predict(pairs, **kwargs), dtype=np.float32).reshape(-1)
            if pairs
            else np.zeros(0)
        )
        if scores.shape[0] != len(pairs):
            raise RuntimeError(f"the reranker returned {scores.shape[0]} scores for {len(pairs)} pairs")
        if not np.all(np.isfinite(scores)):
            raise RuntimeError(
                "the reranker returned non-finite scores (NaN or inf); check the model and dtype"
            )
        offset = 0
        for query_id in group:
            doc_ids = candidates[query_id]
            query_scores = scores[offset : offset + len(doc_ids)]
            offset += len(doc_ids)
            order = sorted(
                range(len(doc_ids)), key=lambda i: -float(query_scores[i])
            )  # stable: ties keep first-stage order
            reranked[query_id] = {doc_ids[i]: float(query_scores[i]) for i in order}
        bar.update(len(pairs))

    with tqdm(total=total, desc="reranking", unit="pair", disable=not show_progress) as bar:
        for query_id in candidates:
            group.append(query_id)
            group_pairs += len(candidates[query_id])
            if group_pairs >= pairs_per_call:
                flush()
                group, group_pairs = [], 0
        if group:
            flush()
    return {q: reranked[q] for q in candidates}


def first_stage_run(
    dataset: BeirDataset,
    first_stage: str = "bm25",
    k: int = 100,
    bm25_config: BM25Config | None = None,
    dense_model: str | None = None,
    device: str | None = "cpu",
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> tuple[Run, dict[str, float]]:
    """Index `dataset.corpus` and retrieve `k` documents per query; returns (run, timings in seconds)."""
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"unknown first stage {first_stage!r}; choose one of {', '.join(FIRST_STAGES)}")
    timings: dict[str, float] = {}
    bm25 = dense = None
    start = time.perf_counter()
    if first_stage in ("bm25", "hybrid"):
        from ..retrieval.bm25 import BM25Index

        bm25 = BM25Index.build(dataset.corpus, bm25_config, show_progress=show_progress)
    if first_stage in ("dense", "hybrid"):
        from ..retrieval.dense import DenseIndex

        dense = DenseIndex.build(
            dataset.corpus, model=dense_model, device=device, cache_dir=cache_dir, show_progress=show_progress
        )
    timings["index_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if first_stage == "bm25":
        run = bm25.search(dataset.queries, k=k, show_progress=show_progress)
    elif first_stage == "dense":
        run = dense.search(dataset.queries, k=k, show_progress=show_progress)
    else:
        from ..retrieval.hybrid import hybrid_search

        run = hybrid_search(dataset.queries, bm25, dense, k=k, show_progress=show_progress)
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
    first_stage: str = "bm25",
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
    batch_tokens: int | None = None,
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
            batch_tokens=batch_tokens,
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
        "reranker": _reranker_name(reranker),
        "nano": nano,
        "seed": seed if nano is not None else None,
        "metrics": list(metrics),
    }
    if first_stage in ("bm25", "hybrid"):
        settings["bm25"] = asdict(bm25_config or BM25Config())
    if first_stage in ("dense", "hybrid"):
        from ..retrieval.dense import DEFAULT_DENSE_MODEL

        settings["dense_model"] = dense_model or DEFAULT_DENSE_MODEL
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


def _reranker_name(reranker: object | None) -> str | None:
    if reranker is None:
        return None
    for attribute in ("name_or_path", "model_name_or_path", "name"):
        value = getattr(reranker, attribute, None)
        if isinstance(value, str | Path):
            return str(value)
    return type(reranker).__name__
