"""Retrieve, then rerank: a run's top-k rescored by a `scoring.PairScorer`.

Shared by `SearchIndex.search` and evaluation, so both apply the same cut and the same tie rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from tqdm.auto import tqdm

from ..scoring import PairScorer, checked_scores
from .beir import Document, Run, scoring_text


def rerank_run(
    scorer: PairScorer,
    queries: Mapping[str, str],
    corpus: Mapping[str, Document | str],
    run: Mapping[str, Mapping[str, float]],
    top_k: int = 100,
    pairs_per_call: int = 4096,
    show_progress: bool = True,
) -> Run:
    """Rescore each query's first `top_k` documents of `run` with `scorer.score_pairs`.

    The result holds, per query, those `top_k` documents ordered by score (raw logits,
    descending); equal scores keep first-stage order. Documents below `top_k` are dropped,
    and relevant documents the first stage missed are not added. Queries are scored in
    groups of about `pairs_per_call` pairs so the scorer can batch across queries.
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
    reranked: Run = {}
    total = sum(len(d) for d in candidates.values())
    group: list[str] = []
    group_pairs = 0

    def flush() -> None:
        pairs = [(queries[q], scoring_text(corpus[d])) for q in group for d in candidates[q]]
        scores = checked_scores(scorer.score_pairs(pairs) if pairs else [], len(pairs), scorer.name)
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
