"""Would a faster, lossy mode rank better under `search`'s time budget? NDCG@10 by rerank depth.

`search` reranks BM25's candidates in order until its time budget runs out, so a mode S times
faster reranks about S times as many. This takes two reranked runs of the same first stage
(`ettin-rerank evaluate DATA --top-k K --save-run RUN.trec`, once per mode) and prints NDCG@10 when
only the first d candidates are reranked (the rest keep the first stage's order), then the faster
mode at S x d against the baseline at d, per query paired, with a bootstrap 95% interval.

    PYTHONPATH=src python benchmarks/budget_depth.py --qrels ../shared/data/scifact/qrels/test.tsv \
        --first-stage runs/exact.first-stage.trec --baseline runs/exact.trec --faster runs/int8.trec \
        --speedup 1.4
"""

from __future__ import annotations

import argparse
from functools import cache

import numpy as np

from ettin_rerank.evaluation.metrics import evaluate_per_query
from ettin_rerank.retrieval.beir import load_qrels
from ettin_rerank.retrieval.trec import read_run

Run = dict[str, dict[str, float]]


def rerank_to_depth(first_stage: Run, reranked: Run, depth: int) -> Run:
    """The first `depth` first-stage candidates of each query by reranker score, then the rest in
    first-stage order (as `search` lists what its budget did not reach)."""
    out: Run = {}
    for query, candidates in first_stage.items():
        order = sorted(candidates, key=lambda doc: -candidates[doc])
        head = sorted(order[:depth], key=lambda doc: -reranked[query][doc])
        ranking = head + order[depth:]
        out[query] = {doc: float(len(ranking) - rank) for rank, doc in enumerate(ranking)}
    return out


def ndcg_per_query(qrels: dict[str, dict[str, int]], run: Run) -> np.ndarray:
    per_query = evaluate_per_query(qrels, run, ["ndcg@10"])
    return np.array([per_query[query]["ndcg@10"] for query in sorted(per_query)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qrels", required=True, help="BEIR qrels TSV")
    parser.add_argument("--first-stage", required=True, help="the first stage's TREC run")
    parser.add_argument("--baseline", required=True, help="TREC run reranked by the baseline mode")
    parser.add_argument("--faster", required=True, help="TREC run reranked by the faster mode")
    parser.add_argument(
        "--speedup", type=float, required=True, help="faster mode's speed over the baseline's"
    )
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 12, 16, 24, 32])
    args = parser.parse_args()
    qrels = {query: dict(judged) for query, judged in load_qrels(args.qrels).items()}
    first_stage = read_run(args.first_stage)
    reranked = {"baseline": read_run(args.baseline), "faster": read_run(args.faster)}
    deepest = min(len(candidates) for run in reranked.values() for candidates in run.values())
    print(f"NDCG@10 with the first d first-stage candidates reranked (both runs reranked {deepest}+)")
    print(f"{'d':>4} {'baseline':>9} {'faster':>9}")

    @cache
    def ndcg_at(name: str, depth: int) -> np.ndarray:
        return ndcg_per_query(qrels, rerank_to_depth(first_stage, reranked[name], depth))

    for depth in [0, *args.depths, deepest]:
        print(f"{depth:>4} {ndcg_at('baseline', depth).mean():9.4f} {ndcg_at('faster', depth).mean():9.4f}")
    print(f"\nthe same time budget: the faster mode at {args.speedup}x the depth (paired, bootstrap 95%)")
    rng = np.random.default_rng(0)
    for depth in args.depths:
        faster_depth = min(round(depth * args.speedup), deepest)
        base, fast = ndcg_at("baseline", depth), ndcg_at("faster", faster_depth)
        diff = fast - base
        boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
        low, high = np.percentile(boots, [2.5, 97.5])
        print(
            f"baseline@{depth} {base.mean():.4f}  faster@{faster_depth} {fast.mean():.4f}  "
            f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]"
        )


if __name__ == "__main__":
    main()
