"""Exact mode's oneDNN linears against the same model through torch's BLAS (`nn.Linear`), same run.

    PYTHONPATH=src python benchmarks/exact_linears.py [--model DIR] [--queries 3] [--rounds 3]

`--queries` x 100 SciFact pairs (`beir_short_pairs(scifact, queries, 100, seed 0)`), 2 threads,
alternating rounds, medians; the largest score difference between the two (float rounding only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ettin_rerank import Reranker
from ettin_rerank.benchmarking.workloads import beir_short_pairs
from ettin_rerank.inference.onednn import unpack_linears_onednn


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="a model directory (default: the bundled model)")
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact"
    )
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    pairs = beir_short_pairs(args.data, num_queries=args.queries, docs_per_query=100, seed=0)
    blas = Reranker.from_pretrained(args.model, dtype="float32")
    unpack_linears_onednn(blas.model.encoder)
    engines = {
        "nn.Linear (torch's BLAS)": blas,
        "oneDNN (exact mode)": Reranker.from_pretrained(args.model, dtype="float32"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, reranker in engines.items():
            started = time.perf_counter()
            scores[name] = np.asarray(reranker.score_pairs(pairs))
            seconds[name].append(time.perf_counter() - started)
    reference = float(np.median(seconds["nn.Linear (torch's BLAS)"]))
    for name in engines:
        median = float(np.median(seconds[name]))
        print(f"{name:26s} {len(pairs) / median:6.1f} pairs/s {reference / median:5.2f}x")
    first, second = scores.values()
    print(f"max |score difference| {np.abs(first - second).max():.2e} (score std {first.std():.3f})")


if __name__ == "__main__":
    main()
