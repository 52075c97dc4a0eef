"""How good is the `hybrid:` teacher? Rerank a BEIR split's BM25 top 100 by its score.

    python benchmarks/hybrid_teacher.py ../shared/data/scifact --split test

Prints NDCG@10 for BM25, the MiniLM cosine alone, and cosine + w * BM25 for a few w
(the teacher uses w = 0.02). Dense embeddings come from the evaluation cache.
"""

from __future__ import annotations

import argparse

import numpy as np

from ettin_rerank.evaluation.metrics import evaluate_run
from ettin_rerank.retrieval.beir import load_beir
from ettin_rerank.retrieval.bm25 import BM25Index
from ettin_rerank.retrieval.dense import DenseIndex


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset_dir")
    parser.add_argument("--split", default="test")
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()

    dataset = load_beir(args.dataset_dir, args.split)
    bm25 = BM25Index.build(dataset.corpus, show_progress=False)
    dense = DenseIndex.build(dataset.corpus, show_progress=False)
    run = bm25.search(dataset.queries, k=args.top_k, show_progress=False)
    query_ids = list(run)
    query_embeddings = dense.encode_queries([dataset.queries[q] for q in query_ids])
    row_of = {doc_id: row for row, doc_id in enumerate(dense.doc_ids)}
    print(f"BM25 top-{args.top_k}: NDCG@10 {evaluate_run(dataset.qrels, run)['ndcg@10']:.4f}")
    for weight in (0.0, 0.005, 0.01, 0.02):
        reranked = {}
        for i, query_id in enumerate(query_ids):
            doc_ids = list(run[query_id])
            lexical = np.array([run[query_id][d] for d in doc_ids])
            cosine = dense.embeddings[[row_of[d] for d in doc_ids]] @ query_embeddings[i]
            reranked[query_id] = dict(zip(doc_ids, (cosine + weight * lexical).tolist(), strict=True))
        ndcg = evaluate_run(dataset.qrels, reranked)["ndcg@10"]
        print(f"cosine + {weight} x BM25: NDCG@10 {ndcg:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
