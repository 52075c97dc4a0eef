"""Step 3, `select`: the recipe's subsampling of teacher-scored candidates by teacher rank.

Per query, candidates ranked by teacher score (descending, ties by candidate order):

1. cut to `keep` (256): all judged positives + the top `top_hard` (16) + a
   quantile-stratified sample of the remaining ranks: the rest of the ranking is cut
   into as many equal rank strata as there are free slots, one candidate drawn from each;
2. of those, `per_query` (64) for training: half the top of the teacher ranking, half
   drawn from a medium band (ranks between `medium_band` quantiles of the kept list).

Randomness comes from a generator seeded by (seed, query_id), so the output does not
depend on query order or sharding. `heldout_queries` queries are set aside (same
selection) as `OUTPUT/heldout/` for the eval loss; the rest go to `OUTPUT/train/`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..config.training import SELECTION
from .io import (
    PROVENANCE_COLUMNS,
    read_table,
    shard_path,
    utc_now,
    with_provenance,
    write_atomic,
    write_manifest,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("query_id", "query", "doc_id", "document", "label", "teacher_score")


def _rng(seed: int, query_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x00{query_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def select_for_query(
    teacher_scores: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    keep: int = 256,
    top_hard: int = 16,
    per_query: int = 64,
    medium_band: tuple[float, float] = (0.25, 0.75),
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the query's candidates, and a tag per index (0 = top, 1 = medium).

    Returned in teacher-rank order.
    """
    n = len(teacher_scores)
    order = np.argsort(-np.asarray(teacher_scores, dtype=np.float64), kind="stable")  # rank -> candidate
    # Stage 1: positives + top hard + stratified rest, up to `keep` (positives always stay).
    chosen_ranks = set(range(min(top_hard, n)))
    positive_ranks = {int(r) for r in np.nonzero(np.asarray(labels)[order] > 0)[0]}
    chosen_ranks |= positive_ranks
    rest = np.array([r for r in range(n) if r not in chosen_ranks], dtype=np.int64)
    slots = max(0, keep - len(chosen_ranks))
    if len(rest) <= slots:
        chosen_ranks.update(int(r) for r in rest)
    elif slots > 0:
        edges = np.linspace(0, len(rest), slots + 1)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            lo_i, hi_i = int(np.floor(lo)), max(int(np.floor(hi)), int(np.floor(lo)) + 1)
            chosen_ranks.add(int(rest[rng.integers(lo_i, hi_i)]))
    kept = np.array(sorted(chosen_ranks), dtype=np.int64)  # ranks, best first
    # Stage 2: half from the top of the kept ranking, half from its medium band.
    if len(kept) <= per_query:
        final, tags = kept, np.where(np.arange(len(kept)) < per_query // 2, 0, 1)
    else:
        n_top = per_query // 2
        top = kept[:n_top]
        lo = max(n_top, int(np.floor(medium_band[0] * len(kept))))
        hi = max(lo, int(np.ceil(medium_band[1] * len(kept))))
        band = kept[lo:hi]
        n_medium = per_query - n_top
        if len(band) < n_medium:  # band too narrow: widen it below the top picks
            band = kept[n_top:]
        medium = np.sort(rng.choice(band, size=min(n_medium, len(band)), replace=False))
        final = np.concatenate([top, medium])
        tags = np.concatenate([np.zeros(len(top), dtype=np.int64), np.ones(len(medium), dtype=np.int64)])
    return order[final], tags


def select_training_pairs(
    scored_dir: str | Path,
    output_dir: str | Path,
    keep: int = SELECTION.keep,
    per_query: int = SELECTION.per_query,
    top_hard: int = SELECTION.top_hard,
    medium_band: tuple[float, float] = SELECTION.medium_band,
    heldout_queries: int = SELECTION.heldout_queries,
    seed: int = SELECTION.seed,
    queries_per_shard: int = 10_000,
) -> Path:
    """Subsample teacher-scored candidates; returns `output_dir` (with `train/`, `heldout/`)."""
    if not (1 <= per_query <= keep):
        raise ValueError(f"need 1 <= per_query <= keep, got per_query={per_query}, keep={keep}")
    if top_hard < 0 or not (0.0 <= medium_band[0] < medium_band[1] <= 1.0):
        raise ValueError(
            f"top_hard must be >= 0 and medium_band two increasing fractions in [0, 1], got {top_hard}, {medium_band}"
        )
    output_dir = Path(output_dir)
    table = read_table(scored_dir, REQUIRED_COLUMNS, "select")
    scores = table.column("teacher_score").to_numpy(zero_copy_only=False).astype(np.float64)
    labels = table.column("label").to_numpy(zero_copy_only=False)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{scored_dir}: some teacher scores are NaN or infinite; rescore them")
    rows_of = _rows_by_query(table.column("query_id").to_numpy(zero_copy_only=False).astype(str))
    heldout_count = min(heldout_queries, max(0, len(rows_of) - 1))
    heldout = set(random.Random(seed).sample(sorted(rows_of), heldout_count)) if heldout_count else set()

    picks: dict[str, list[tuple[int, int, int]]] = {
        "train": [],
        "heldout": [],
    }  # (row, rank in selection, tag)
    for q, query_rows in rows_of.items():
        rows = np.asarray(query_rows, dtype=np.int64)
        chosen, tags = select_for_query(
            scores[rows], labels[rows], _rng(seed, q), keep, top_hard, per_query, medium_band
        )
        target = picks["heldout" if q in heldout else "train"]
        target.extend(
            (int(rows[c]), position, int(t)) for position, (c, t) in enumerate(zip(chosen, tags, strict=True))
        )

    settings = {
        "step": "select",
        "scored": str(Path(scored_dir).resolve()),
        "keep": keep,
        "per_query": per_query,
        "top_hard": top_hard,
        "medium_band": list(medium_band),
        "heldout_queries": heldout_count,
        "seed": seed,
    }
    counts = {
        part: _write_selection(table, selected, output_dir / part, queries_per_shard)
        for part, selected in picks.items()
    }
    write_manifest(
        output_dir, {"settings": settings, "rows": counts, "queries": len(rows_of), "complete": True}
    )
    logger.info("selected %s pairs from %d queries", counts, len(rows_of))
    return output_dir


def _rows_by_query(query_ids: np.ndarray) -> dict[str, list[int]]:
    """Each query's rows, queries in first-appearance order and rows in table order."""
    unique, first = np.unique(query_ids, return_index=True)
    rows_of: dict[str, list[int]] = {q: [] for q in unique[np.argsort(first)]}
    for row, q in enumerate(query_ids):
        rows_of[q].append(row)
    return rows_of


def _write_selection(
    table: pa.Table, selected: list[tuple[int, int, int]], directory: Path, queries_per_shard: int
) -> int:
    """The `selected` (row, rank in selection, tag) rows of `table` as shards of whole queries in
    `directory`, replacing what an earlier selection wrote there; returns the rows written."""
    for old in directory.glob("*.parquet"):
        old.unlink()
    if not selected:
        return 0
    rows = np.array([r for r, _, _ in selected], dtype=np.int64)
    out = table.take(pa.array(rows))
    out = out.append_column("selection_rank", pa.array([p for _, p, _ in selected], type=pa.int32()))
    out = out.append_column("selection", pa.array(["top" if t == 0 else "medium" for _, _, t in selected]))
    # each row keeps its own source (a merged input holds several); absent columns are added empty
    missing = {name: "" for name in PROVENANCE_COLUMNS if name not in out.column_names}
    out = with_provenance(out, {**missing, "created_at": utc_now()})
    # Shards hold whole queries.
    out_queries = out.column("query_id").to_pylist()
    boundaries = (
        [0]
        + [i for i in range(1, len(out_queries)) if out_queries[i] != out_queries[i - 1]]
        + [len(out_queries)]
    )
    starts = boundaries[:-1][::queries_per_shard] + [len(out_queries)]
    for shard, (lo, hi) in enumerate(zip(starts[:-1], starts[1:], strict=True)):
        write_atomic(out.slice(lo, hi - lo), shard_path(directory, shard))
    return out.num_rows
