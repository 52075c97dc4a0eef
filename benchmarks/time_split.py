"""Where each engine's time goes (linears, attention, the rest), and what that allows the ratios.

    PYTHONPATH=src python benchmarks/time_split.py --model runs/17m --engines ours-exact,st-default \
        [--num-queries 1] [--docs-per-query 100] [--max-length 512] [--rounds 3] [--threads 2]

Each round runs every engine (alternating order) once untimed by the profiler, for its wall time, and
once under torch's profiler, whose self CPU time per operator is sorted into three parts: the
linear layers (oneDNN's fp32 and int8 linears, torch's matmuls), attention (the SDPA kernels, or
the bmm and softmax of an eager one) and the rest (norms, activations, RoPE, copies, quantization).
Medians over rounds. For each other engine it prints its parts' time over the first engine's, and
two ceilings for the first engine's speed over it: with the first engine's attention and rest
taking no time (no work on those parts can pass it while the linears run as they do), and with the
first engine's linears but the other's attention and rest (what the linears alone buy: for int8
against exact, int8 with no quantization passes at all).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from ettin_rerank.benchmarking.engines import load_engine
from ettin_rerank.benchmarking.workloads import beir_short_pairs

PARTS = ("linear", "attention", "rest")
LINEAR_OPS = {
    "mkldnn::_linear_pointwise",
    "onednn::qlinear_pointwise",
    "quantized::linear_dynamic",
    "aten::mm",
    "aten::addmm",
}
ATTENTION_OPS = {
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::bmm",
    "aten::baddbmm",
    "aten::_softmax",
}


def split_seconds(run) -> dict[str, float]:
    """Self CPU seconds of one call of `run`, by part."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    parts: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        part = "linear" if event.key in LINEAR_OPS else "attention" if event.key in ATTENTION_OPS else "rest"
        parts[part] += event.self_cpu_time_total / 1e6
    return dict(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--engines", default="ours-exact,st-default", help="comma-separated; the first is the baseline"
    )
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--num-queries", type=int, default=1)
    parser.add_argument("--docs-per-query", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pairs = beir_short_pairs(args.data, args.num_queries, args.docs_per_query, 0)
    names = args.engines.split(",")
    engines = {name: load_engine(name, args.model, max_length=args.max_length) for name in names}
    for engine in engines.values():  # warm-up: kernels' first-call set-up and the allocator
        engine.score_pairs(pairs[:20])

    walls: dict[str, list[float]] = defaultdict(list)
    splits: dict[str, list[dict[str, float]]] = defaultdict(list)
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            engine = engines[name]
            start = time.perf_counter()
            engine.score_pairs(pairs)
            walls[name].append(time.perf_counter() - start)
            splits[name].append(split_seconds(lambda engine=engine: engine.score_pairs(pairs)))

    def median_part(name: str, part: str) -> float:
        return statistics.median(split.get(part, 0.0) for split in splits[name])

    print(
        f"{len(pairs)} pairs, max length {args.max_length}, {args.threads} threads, {args.rounds} rounds; "
        "seconds are medians of the profiled passes' self CPU time"
    )
    print(f"{'engine':<12} {'pairs/s':>8} " + " ".join(f"{part:>10}" for part in PARTS) + f" {'total':>8}")
    for name in names:
        seconds = [median_part(name, part) for part in PARTS]
        rate = len(pairs) / statistics.median(walls[name])
        print(
            f"{name:<12} {rate:>8.2f} " + " ".join(f"{s:>10.3f}" for s in seconds) + f" {sum(seconds):>8.3f}"
        )
    baseline = names[0]
    base_linear = median_part(baseline, "linear")
    for name in names[1:]:
        ratios = [median_part(name, part) / max(median_part(baseline, part), 1e-9) for part in PARTS]
        total = sum(median_part(name, part) for part in PARTS)
        unchanged_rest = base_linear + median_part(name, "attention") + median_part(name, "rest")
        print(
            f"{name}'s time over {baseline}'s: "
            + ", ".join(f"{part} {ratio:.2f}x" for part, ratio in zip(PARTS, ratios, strict=True))
            + f", total {total / sum(median_part(baseline, part) for part in PARTS):.2f}x"
        )
        print(
            f"  {baseline}'s ceiling over {name}: {total / base_linear:.2f}x if its attention and rest took no "
            f"time; {total / unchanged_rest:.2f}x with its linears and {name}'s attention and rest"
        )


if __name__ == "__main__":
    main()
