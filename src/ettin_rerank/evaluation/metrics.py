"""Ranking metrics, computed the way trec_eval computes them.

Definitions (R = the query's relevant documents, those judged with score > 0;
ranks start at 1; a run is ranked by score descending, equal scores keep the
run's insertion order, which for our runs is first-stage order):

- ndcg@10: sum over ranks r <= 10 of gain(d_r) / log2(r + 1), divided by the same
  sum for the ideal ordering of the judged documents; gain is the judged score
  (linear gains, as trec_eval's ndcg_cut).
- mrr@10: 1 / rank of the first relevant document if it is within the top 10, else 0.
- map@100: sum over relevant documents retrieved at rank r <= 100 of precision@r,
  divided by |R| (trec_eval's map_cut_100).
- recall@k: relevant documents in the top k, divided by |R|.

Each is averaged over queries. `evaluate_run` scores every query in `qrels` that
has at least one relevant document; such a query missing from the run scores 0.
Queries without any relevant document are skipped (they have no defined score).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100")
_KINDS = ("ndcg", "mrr", "map", "recall", "precision")


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10)."""
    kind, sep, cutoff = name.lower().partition("@")
    if kind not in _KINDS or not sep or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(
            f"unknown metric {name!r}; use one of {', '.join(k + '@K' for k in _KINDS)} (e.g. ndcg@10)"
        )
    return kind, int(cutoff)


def ranked_ids(scores: Mapping[str, float]) -> list[str]:
    """Document ids by score descending; equal scores keep insertion order (stable sort)."""
    return sorted(scores, key=lambda d: -scores[d])


def _query_metric(kind: str, cutoff: int, ranking: Sequence[str], judged: Mapping[str, int]) -> float:
    relevant = {d for d, s in judged.items() if s > 0}
    top = ranking[:cutoff]
    if kind == "ndcg":
        dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(top))
        ideal_gains = sorted((s for s in judged.values() if s > 0), reverse=True)[:cutoff]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains))
        return dcg / idcg if idcg > 0 else 0.0
    if kind == "mrr":
        for i, d in enumerate(top):
            if d in relevant:
                return 1.0 / (i + 1)
        return 0.0
    if kind == "map":
        hits, total = 0, 0.0
        for i, d in enumerate(top):
            if d in relevant:
                hits += 1
                total += hits / (i + 1)
        return total / len(relevant)
    if kind == "recall":
        return sum(1 for d in top if d in relevant) / len(relevant)
    if kind == "precision":
        return sum(1 for d in top if d in relevant) / cutoff
    raise AssertionError(kind)


def evaluate_per_query(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """{query_id: {metric: value}} for every query in `qrels` with a relevant document."""
    parsed = [(name, *parse_metric(name)) for name in metrics]
    results: dict[str, dict[str, float]] = {}
    for query_id, judged in qrels.items():
        if not any(s > 0 for s in judged.values()):
            continue
        ranking = ranked_ids(run.get(query_id, {}))
        results[query_id] = {
            name: _query_metric(kind, cutoff, ranking, judged) for name, kind, cutoff in parsed
        }
    return results


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the judged queries: {"ndcg@10": 0.67, ...}.

    Raises ValueError when no query in `qrels` has a relevant document.
    """
    per_query = evaluate_per_query(qrels, run, metrics)
    skipped = len(qrels) - len(per_query)
    if skipped:
        logger.warning("%d quer(y/ies) have no relevant judgement and are left out of the metrics", skipped)
    if not per_query:
        raise ValueError("no query has a relevant judgement (score > 0); there is nothing to evaluate")
    missing = sum(1 for q in per_query if not run.get(q))
    if missing:
        logger.warning("%d judged quer(y/ies) have no retrieved documents; they score 0", missing)
    return {name: sum(v[name] for v in per_query.values()) / len(per_query) for name in metrics}
