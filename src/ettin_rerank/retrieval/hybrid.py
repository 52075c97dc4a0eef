"""Hybrid first stage: reciprocal-rank fusion (RRF) of several runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .beir import Run


def reciprocal_rank_fusion(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    k: int = 100,
    rrf_k: int = 60,
    weights: Sequence[float] | None = None,
) -> Run:
    """Fuse runs: score(d) = sum_i weight_i / (rrf_k + rank_i(d)), ranks from 1.

    Each input run is read in its own order (best first). Equal fused scores keep
    the order in which documents first appear walking the runs rank by rank
    (rank 1 of run 0, rank 1 of run 1, rank 2 of run 0, ...), so the result is
    deterministic.
    """
    if not runs:
        raise ValueError("reciprocal_rank_fusion needs at least one run")
    if weights is None:
        weights = [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError(f"got {len(weights)} weights for {len(runs)} runs")
    query_ids: dict[str, None] = {}
    for run in runs:
        query_ids.update(dict.fromkeys(run))
    fused: Run = {}
    for query_id in query_ids:
        lists = [list(run.get(query_id, {})) for run in runs]
        scores: dict[str, float] = {}
        first_seen: dict[str, int] = {}
        depth = max((len(ranked) for ranked in lists), default=0)
        for rank in range(depth):
            for weight, ranked in zip(weights, lists, strict=True):
                if rank < len(ranked):
                    doc_id = ranked[rank]
                    first_seen.setdefault(doc_id, len(first_seen))
                    scores[doc_id] = scores.get(doc_id, 0.0) + weight / (rrf_k + rank + 1)
        order = sorted(scores, key=lambda d: (-scores[d], first_seen[d]))[:k]
        fused[query_id] = {d: scores[d] for d in order}
    return fused


def hybrid_search(
    queries: Mapping[str, str],
    bm25,
    dense,
    k: int = 100,
    depth: int | None = None,
    rrf_k: int = 60,
    show_progress: bool = True,
) -> Run:
    """RRF of a `BM25Index` and a `DenseIndex`, each searched to `depth` (default max(k, 100))."""
    depth = depth or max(k, 100)
    lexical = bm25.search(queries, k=depth, show_progress=show_progress)
    semantic = dense.search(queries, k=depth, show_progress=show_progress)
    return reciprocal_rank_fusion([lexical, semantic], k=k, rrf_k=rrf_k)
