"""Peak memory of reranking N documents of ~8k tokens with our engine (exact mode).

    .venv/bin/python benchmarks/memory_long.py --model DIR --data ../shared/data/scifact --docs 10 40

Each N runs in a fresh process and reports its lifetime peak RSS; a flat peak across N
shows that memory is bounded by the batch, not by the input size (batches are streamed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(model: str, data: str, docs: int, threads: int) -> dict:
    import torch

    from ettin_rerank import Reranker
    from ettin_rerank.benchmarking.workloads import long_pairs

    torch.set_num_threads(threads)
    reranker = Reranker.from_pretrained(model)
    pairs = long_pairs(data, reranker.tokenizer, num_docs=docs, min_tokens=7900, max_tokens=8200)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    reranker.predict(pairs)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"docs": docs, "peak_rss_mb": peak, "rss_before_predict_mb": before, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--docs", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.model, args.data, args.one, args.threads)))
        return 0
    for docs in args.docs:
        command = [sys.executable, __file__, "--model", args.model, "--data", args.data, "--one", str(docs)]
        command += ["--threads", str(args.threads)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(out.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
