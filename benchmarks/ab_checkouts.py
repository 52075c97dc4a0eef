"""The same scoring in two checkouts of ettin-rerank, in alternating fresh processes: is a change faster?

    git worktree add ../before d683b0a
    PYTHONPATH=src python benchmarks/ab_checkouts.py --before ../before/src [--after src] \
        --model src/ettin_rerank/default_model [--max-length 256] [--num-queries 3] [--processes 4] \
        [--passes 2] [--quantize int8] [--eight-at-a-time]

Each process imports ettin-rerank from one checkout's `src`, loads the model (exact fp32, or int8),
scores 20 pairs to warm up, then times `--passes` passes over the SciFact pairs of the `bench`
workload (`beir_short_pairs(data, num_queries, 100, 0)`) through `predict`, or, with
`--eight-at-a-time`, through `score_report(..., "chunk")` eight pairs a call, as `search` reranks
its candidates. Processes run in pairs (before and after, order alternating), so drift on a shared
host hits both sides. Prints each pass's seconds and voluntary context switches (getrusage: times
the process blocked), and the median over process pairs of before's median pass over after's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    """Runs in the checkout under test (its `src` first on sys.path): one line per timed pass."""
    import torch

    from ettin_rerank import Reranker
    from ettin_rerank.benchmarking.workloads import beir_short_pairs

    torch.set_num_threads(args.threads)
    pairs = beir_short_pairs(args.data, args.num_queries, 100, 0)
    kwargs = {"quantize": args.quantize} if args.quantize else {}
    reranker = Reranker.from_pretrained(args.model, dtype="float32", max_length=args.max_length, **kwargs)
    reranker.predict(pairs[:20])

    def score() -> None:
        if not args.eight_at_a_time:
            reranker.predict(pairs)
            return
        for start in range(0, len(pairs), 8):
            reranker.score_report(pairs[start : start + 8], "chunk", show_progress_bar=False)

    for _ in range(args.passes):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        score()
        seconds = time.perf_counter() - start
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before.ru_nvcsw
        print(f"{seconds:.4f} {switches}", flush=True)


def run_side(src: str, argv: list[str]) -> list[tuple[float, int]]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        (float(seconds), int(switches))
        for seconds, switches in (line.split() for line in done.stdout.split("\n") if line)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", help="the baseline checkout's src directory")
    parser.add_argument("--after", default="src", help="the changed checkout's src directory (default: src)")
    parser.add_argument("--model", default="src/ettin_rerank/default_model")
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--num-queries", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4, help="process pairs")
    parser.add_argument("--passes", type=int, default=2, help="timed passes per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--eight-at-a-time", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not args.before:
        parser.error("--before is required")
    argv = sys.argv[1:]  # the children parse the same flags
    ratios = []
    for index in range(args.processes):
        sides = ("before", "after") if index % 2 else ("after", "before")
        medians = {}
        for side in sides:
            passes = run_side(getattr(args, side), argv)
            medians[side] = statistics.median(seconds for seconds, _ in passes)
            shown = ", ".join(f"{seconds:.2f} s ({switches} switches)" for seconds, switches in passes)
            print(f"pair {index + 1} {side:<6} {shown}", flush=True)
        ratios.append(medians["before"] / medians["after"])
    print(
        f"before over after, per process pair: {' '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
