"""NanoBEIR-style subsets: a few queries, their judged documents and first-stage distractors.

The subset is small enough that a full evaluation (first stage + rerank of the
top-100) runs in minutes on a CPU, and it is deterministic for a given seed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path

from .beir import BeirDataset, DatasetIssues, Document, Run, write_beir

logger = logging.getLogger(__name__)


def build_nano_subset(
    dataset: BeirDataset,
    n_queries: int = 50,
    max_corpus: int = 5000,
    seed: int = 0,
    distractor_run: Run | None = None,
    distractor_depth: int = 100,
    output_dir: str | Path | None = None,
    show_progress: bool = True,
) -> BeirDataset:
    """Sample `n_queries` judged queries and build a corpus of at most `max_corpus` documents.

    The corpus holds every document judged for the sampled queries, then
    distractors taken from a first stage over the full corpus (`distractor_run`,
    default BM25 with its default settings), rank by rank across the queries
    (every query's rank 1, then every query's rank 2, ...) until `max_corpus` is
    reached or `distractor_depth` is exhausted. Queries are sampled among those
    with a relevant document. Documents keep the parent corpus order.
    When `output_dir` is given the subset is also written there in BEIR format,
    with a `nano.json` recording how it was built.
    """
    if n_queries < 1:
        raise ValueError(f"n_queries must be at least 1, got {n_queries}")
    if max_corpus < 1:
        raise ValueError(f"max_corpus must be at least 1, got {max_corpus}")
    query_ids = _sample_queries(dataset, n_queries, seed)
    selected = _judged_documents(dataset, query_ids, max_corpus)
    if len(selected) < max_corpus:
        if distractor_run is None:
            distractor_run = _bm25_run(dataset, query_ids, distractor_depth, show_progress)
        ranked = [list(distractor_run.get(q, {}))[:distractor_depth] for q in query_ids]
        _add_distractors(selected, ranked, dataset.corpus, max_corpus)

    subset = BeirDataset(
        corpus={d: doc for d, doc in dataset.corpus.items() if d in selected},
        queries={q: dataset.queries[q] for q in query_ids},
        qrels={q: dict(dataset.qrels[q]) for q in query_ids},
        name=f"nano-{dataset.name}" if dataset.name else "nano",
        split=dataset.split,
        issues=DatasetIssues(),
    )
    logger.info(
        "nano subset: %d queries, %d documents (seed %d)", len(subset.queries), len(subset.corpus), seed
    )
    if output_dir is not None:
        info = {
            "source": dataset.name,
            "split": dataset.split,
            "n_queries": len(subset.queries),
            "max_corpus": max_corpus,
            "corpus_size": len(subset.corpus),
            "seed": seed,
            "distractor_depth": distractor_depth,
        }
        _write_nano(subset, info, Path(output_dir))
    return subset


def _sample_queries(dataset: BeirDataset, n_queries: int, seed: int) -> list[str]:
    """`n_queries` of the queries with a relevant judgement (all of them if fewer), in parent order."""
    eligible = sorted(
        q
        for q, judged in dataset.qrels.items()
        if q in dataset.queries and any(s > 0 for s in judged.values())
    )
    if not eligible:
        raise ValueError("the dataset has no query with a relevant judgement to sample from")
    if n_queries > len(eligible):
        logger.warning(
            "asked for %d queries but only %d are judged with a relevant document; using all",
            n_queries,
            len(eligible),
        )
    chosen = set(random.Random(seed).sample(eligible, min(n_queries, len(eligible))))
    return [q for q in dataset.queries if q in chosen]  # parent order


def _judged_documents(dataset: BeirDataset, query_ids: list[str], max_corpus: int) -> dict[str, None]:
    """Every document judged for `query_ids` (an ordered set), kept whole even past `max_corpus`."""
    selected: dict[str, None] = {}
    for query_id in query_ids:
        selected.update(dict.fromkeys(dataset.qrels[query_id]))
    if len(selected) > max_corpus:
        logger.warning(
            "the %d sampled queries have %d judged documents, more than max_corpus=%d; keeping them all (no distractors)",
            len(query_ids),
            len(selected),
            max_corpus,
        )
    return selected


def _bm25_run(dataset: BeirDataset, query_ids: list[str], depth: int, show_progress: bool) -> Run:
    """The default distractors' source: BM25 (default settings) over the full corpus."""
    from .bm25 import BM25Index

    index = BM25Index.build(dataset.corpus, show_progress=show_progress)
    return index.search({q: dataset.queries[q] for q in query_ids}, k=depth, show_progress=show_progress)


def _add_distractors(
    selected: dict[str, None], ranked: list[list[str]], corpus: Mapping[str, Document], max_corpus: int
) -> None:
    """Adds to `selected` the corpus documents of each query's ranking, rank by rank across the
    queries (every query's rank 1, then every query's rank 2, ...) until `max_corpus` is reached or
    the rankings are exhausted."""
    for rank in range(max((len(r) for r in ranked), default=0)):
        for docs in ranked:
            if len(selected) >= max_corpus:
                break
            if rank < len(docs) and docs[rank] in corpus:
                selected.setdefault(docs[rank], None)
        if len(selected) >= max_corpus:
            break


def _write_nano(subset: BeirDataset, info: dict[str, object], output_dir: Path) -> None:
    """The subset in BEIR format, with `nano.json` recording how it was built."""
    write_beir(subset, output_dir)
    (output_dir / "nano.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
