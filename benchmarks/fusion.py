"""NDCG@10 of a reranked run fused with its first stage: z(reranker) + w * z(first stage), per query.

    ettin-rerank evaluate ../shared/data/vaswani --save-run runs/vaswani.trec    # also writes runs/vaswani.first-stage.trec
    PYTHONPATH=src python benchmarks/fusion.py runs/vaswani.trec runs/vaswani.first-stage.trec \
        ../shared/data/vaswani/qrels/test.tsv [--fit DEV.trec DEV.first-stage.trec DEV_QRELS]

Scores are z-normalised within each query's list (the reranker's logits and BM25 live on different
scales); a document the first stage did not score gets its lowest score. `--fit` picks the weight
on other queries (held-out training queries) and reports the run at it. Issue 21, item 3.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import numpy as np

from ettin_rerank.evaluation.metrics import evaluate_run
from ettin_rerank.retrieval.beir import load_qrels
from ettin_rerank.retrieval.trec import read_qrels, read_run

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)


def z_scores(scores: Mapping[str, float]) -> dict[str, float]:
    values = np.array(list(scores.values()))
    spread = values.std() or 1.0
    return {doc: (score - values.mean()) / spread for doc, score in scores.items()}


def fused_ndcg(reranked_path: str, first_stage_path: str, qrels_path: str) -> dict[float, float]:
    """{w: NDCG@10 of z(reranker) + w * z(first stage)} over WEIGHTS."""
    reranked, first = read_run(reranked_path), read_run(first_stage_path)
    qrels = load_qrels(qrels_path) if qrels_path.endswith(".tsv") else read_qrels(qrels_path)
    normalised = {}  # query -> (z of the reranker, z of the first stage) over the reranked list
    for query, docs in reranked.items():
        floor = min(first[query].values())
        normalised[query] = (z_scores(docs), z_scores({doc: first[query].get(doc, floor) for doc in docs}))
    figures = {}
    for weight in WEIGHTS:
        fused = {
            query: {doc: model[doc] + weight * bm25[doc] for doc in model}
            for query, (model, bm25) in normalised.items()
        }
        figures[weight] = evaluate_run(qrels, fused, ["ndcg@10"])["ndcg@10"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reranked", help="the reranked TREC run")
    parser.add_argument("first_stage", help="the first stage's TREC run")
    parser.add_argument("qrels", help="BEIR qrels/<split>.tsv or TREC qrels")
    parser.add_argument(
        "--fit",
        nargs=3,
        metavar=("RERANKED", "FIRST_STAGE", "QRELS"),
        help="runs and qrels of other queries to choose the weight on",
    )
    args = parser.parse_args()
    figures = fused_ndcg(args.reranked, args.first_stage, args.qrels)
    fit = fused_ndcg(*args.fit) if args.fit else None
    print("| w | NDCG@10 |" + (" fit set |" if fit else "") + "\n|---:|---:|" + ("---:|" if fit else ""))
    for weight, ndcg in figures.items():
        print(f"| {weight} | {ndcg:.4f} |" + (f" {fit[weight]:.4f} |" if fit else ""))
    if fit:
        chosen = max(fit, key=lambda weight: fit[weight])
        print(
            f"weight fitted on the fit set: {chosen}; NDCG@10 here {figures[chosen]:.4f} (w 0: {figures[0.0]:.4f})"
        )


if __name__ == "__main__":
    main()
