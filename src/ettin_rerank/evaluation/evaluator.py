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
    qrels: str | Path | None = None,
    keep_identical_ids: bool = False,
    save_run: str | Path | None = None,
    show_progress: bool = True,
) -> EvaluationReport:
    """First stage (top max(`top_k`, 100)), then rerank its top `top_k` with `reranker`.

    `dataset` is a loaded `BeirDataset` or a BEIR directory (read for `split`, or with the
    TREC-format `qrels` file in place of `qrels/<split>.tsv`; graded judgements are NDCG's gains).
    `first_stage` is a spec: `bm25`, `dense`, `hybrid`, or `run:FILE` to rerank a TREC run.
    `nano=N` evaluates a NanoBEIR-style subset of N queries (see `build_nano_subset`).
    `run` supplies a precomputed first-stage run instead of retrieving.
    A result whose id is its query's id is dropped before anything is scored
    (`drop_identical_ids`) unless `keep_identical_ids`.
    `save_run=OUT` writes the final ranking (reranked, or the first stage's when there is no
    reranker) as a TREC run to OUT, and the first stage's to OUT.first-stage beside it when
    it was retrieved here.
    With `reranker=None` only the first stage is evaluated (`reranked` is None).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    stage_class = first_stage_class(first_stage)  # an unknown name fails before any loading
    if nano is not None and not stage_class.indexes_corpus:
        raise ValueError(
            f"--nano evaluates a subset of the corpus, and {first_stage} ranks the whole of it: use one or the other"
        )
    if not isinstance(dataset, BeirDataset):
        dataset = load_beir(dataset, split, qrels_file=qrels)
    elif qrels is not None:
        raise ValueError("qrels= reads a qrels file for a dataset directory; this dataset is already loaded")
    if nano is not None:
        from ..retrieval.nano import build_nano_subset

        dataset = build_nano_subset(
            dataset, n_queries=nano, max_corpus=nano_max_corpus, seed=seed, show_progress=False
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
    retrieved_here = run is None
    if run is None:
        run, stage_timings = first_stage_run(
            dataset,
            first_stage,
            depth,
            bm25_config,
            dense_model,
            device,
            cache_dir,
            show_progress=False,  # other libraries' bars (bm25s, sentence-transformers); ours is the rerank bar
        )
        timings.update(stage_timings)
    identical_dropped = identical_relevant = 0
    if not keep_identical_ids:
        run, identical_dropped, identical_relevant = drop_identical_ids(
            run, dataset.queries, dataset.corpus, dataset.qrels
        )
        if identical_relevant:
            logger.warning(
                "%d dropped result(s) share their query's id and are judged relevant to it: query and "
                "document ids look like separate numberings here; pass --keep-identical-ids to keep them",
                identical_relevant,
            )
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

    runs: dict[str, str] = {}
    if save_run is not None:
        save_run = Path(save_run)
        if reranker is None:
            runs["first_stage"] = str(write_run(run, save_run, tag=stage_class.name))
        else:
            runs["reranked"] = str(write_run(reranked_run, save_run))
            if retrieved_here and stage_class.indexes_corpus:  # a run file's copy would add nothing
                first_path = _first_stage_copy_path(save_run)
                runs["first_stage"] = str(write_run(run, first_path, tag=stage_class.name))

    settings: dict[str, Any] = {
        "first_stage": first_stage,
        "top_k": top_k,
        "retrieval_depth": depth,
        "reranker": reranker.name if reranker is not None else None,
        "nano": nano,
        "seed": seed if nano is not None else None,
        "metrics": list(metrics),
        "qrels": str(qrels) if qrels is not None else None,
        "keep_identical_ids": keep_identical_ids,
    }
    described = FirstStageSettings(bm25=bm25_config, dense_model=dense_model)
    settings.update(stage_class.describe(first_stage_settings(first_stage, described)))
    counts = {
        "documents": len(dataset.corpus),
        "queries_judged": len(dataset.qrels),
        "queries_evaluated": len(evaluated),
        "queries_skipped_no_relevant": len(dataset.qrels) - len(evaluated),
        "queries_empty_text": len(empty_queries),
        "identical_ids_dropped": identical_dropped,
        "identical_ids_judged_relevant": identical_relevant,
        **dataset.issues.to_dict(),
    }
    return EvaluationReport(
        dataset={"name": dataset.name, "split": dataset.split},
        settings=settings,
        first_stage=first_metrics,
        reranked=reranked_metrics,
        timings=timings,
        counts=counts,
        runs=runs,
    )
