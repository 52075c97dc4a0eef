"""Step 1, `mine`: per query, a first stage's top candidates plus every judged positive.

Output: Parquet shards of (query_id, query, doc_id, document, label, first_stage_rank,
first_stage_score) plus provenance. `label` is the qrels grade (0 when unjudged);
positives the first stage missed are added with `first_stage_rank = -1`.
Resumable: queries are cut into fixed shards, finished shards are kept on restart.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from ..config.training import MINING
from ..retrieval.first_stage import (
    DEFAULT_FIRST_STAGE,
    FirstStage,
    FirstStageSettings,
    build_first_stage,
    first_stage_class,
)
from .io import ResumableShards

if TYPE_CHECKING:
    from ..retrieval.beir import BeirDataset

logger = logging.getLogger(__name__)


def mine_candidates(  # noqa: PLR0913 (its parameters are the `mine` command's flags)
    dataset_dir: str | Path,
    output_dir: str | Path,
    split: str = MINING.split,
    first_stage: str = DEFAULT_FIRST_STAGE,
    depth: int = MINING.depth,
    max_queries: int | None = MINING.max_queries,
    queries_per_shard: int = MINING.queries_per_shard,
    seed: int = MINING.seed,
    dense_model: str | None = None,
    device: str | None = MINING.device,
    show_progress: bool = True,
) -> Path:
    """Mine candidates for the judged queries of `split`; returns `output_dir`.

    `depth` is bounded by the corpus size. `max_queries` takes a seeded random subset
    of the judged queries (kept in dataset order).
    """
    from ..retrieval.beir import load_beir

    first_stage_class(first_stage)  # an unknown name fails before any work
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if queries_per_shard < 1:
        raise ValueError(f"queries_per_shard must be at least 1, got {queries_per_shard}")
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    dataset = load_beir(dataset_dir, split)
    query_ids = [q for q in dataset.queries if q in dataset.qrels]
    if not query_ids:
        raise ValueError(f"{dataset_dir}: split {split!r} has no judged queries; nothing to mine")
    query_ids = _sample_queries(query_ids, max_queries, seed)
    depth_eff = min(depth, len(dataset.corpus))

    settings = {
        "step": "mine",
        "dataset": dataset_dir.name,
        "dataset_dir": str(dataset_dir.resolve()),
        "split": split,
        "first_stage": first_stage,
        "depth": depth_eff,
        "queries": len(query_ids),
        "max_queries": max_queries,
        "queries_per_shard": queries_per_shard,
        "seed": seed,
        "dense_model": dense_model,
    }
    output = ResumableShards(
        output_dir, settings, "candidates", num_shards=math.ceil(len(query_ids) / queries_per_shard)
    )
    todo = output.start()
    if not todo:
        logger.info("all %d candidate shards already exist in %s", output.num_shards, output_dir)
    else:
        if len(todo) < output.num_shards:
            logger.info(
                "resuming: %d of %d candidate shards already written",
                output.num_shards - len(todo),
                output.num_shards,
            )
        stage_settings = FirstStageSettings(dense_model=dense_model, device=device)
        stage = build_first_stage(first_stage, dataset.corpus, stage_settings, show_progress=show_progress)
        provenance = {"dataset": dataset_dir.name, "split": split, "first_stage": first_stage, "teacher": ""}
        for shard in todo:
            shard_queries = query_ids[shard * queries_per_shard : (shard + 1) * queries_per_shard]
            table = _mine_shard(stage, dataset, shard_queries, depth_eff)
            output.write_shard(shard, table, provenance)
            logger.info(
                "mined shard %d/%d: %d queries, %d pairs",
                shard + 1,
                output.num_shards,
                len(shard_queries),
                table.num_rows,
            )
    output.finish()
    return output_dir


def _mine_shard(stage: FirstStage, dataset: BeirDataset, query_ids: list[str], depth: int) -> pa.Table:
    """One shard's candidates: the first stage's top `depth` per query, plus the positives it missed."""
    run = stage.search({q: dataset.queries[q] for q in query_ids}, k=depth)
    return _candidate_table(dataset, query_ids, run)


def _sample_queries(query_ids: list[str], max_queries: int | None, seed: int) -> list[str]:
    """A seeded random subset of `max_queries` of `query_ids` (all when None), kept in their order."""
    if max_queries is None:
        return query_ids
    if max_queries < 1:
        raise ValueError(f"max_queries must be at least 1, got {max_queries}")
    chosen = set(random.Random(seed).sample(query_ids, min(max_queries, len(query_ids))))
    return [q for q in query_ids if q in chosen]


def _candidate_table(dataset, query_ids: list[str], run) -> pa.Table:
    columns: dict[str, list] = {
        k: []
        for k in ("query_id", "query", "doc_id", "document", "label", "first_stage_rank", "first_stage_score")
    }

    def add(query_id: str, doc_id: str, rank: int, score: float) -> None:
        columns["query_id"].append(query_id)
        columns["query"].append(dataset.queries[query_id])
        columns["doc_id"].append(doc_id)
        columns["document"].append(dataset.corpus[doc_id].text_for_scoring)
        columns["label"].append(int(dataset.qrels.get(query_id, {}).get(doc_id, 0)))
        columns["first_stage_rank"].append(rank)
        columns["first_stage_score"].append(score)

    for query_id in query_ids:
        retrieved = run.get(query_id, {})
        for rank, (doc_id, score) in enumerate(retrieved.items(), start=1):
            add(query_id, doc_id, rank, float(score))
        for doc_id, grade in dataset.qrels.get(query_id, {}).items():
            if grade > 0 and doc_id not in retrieved:
                add(query_id, doc_id, -1, float("nan"))
    schema = pa.schema(
        [
            ("query_id", pa.string()),
            ("query", pa.string()),
            ("doc_id", pa.string()),
            ("document", pa.string()),
            ("label", pa.int32()),
            ("first_stage_rank", pa.int32()),
            ("first_stage_score", pa.float32()),
        ]
    )
    return pa.table(columns, schema=schema)
