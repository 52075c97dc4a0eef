"""`ettin-rerank bench`: our engine in each mode against Sentence Transformers, same pairs, same machine."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from ..benchmarking.engines import DEFAULT_ENGINES, ENGINES
    from ..benchmarking.workloads import WORKLOADS

    bench = subparsers.add_parser(
        "bench",
        help="measure pairs/s of our engine (each mode) and sentence-transformers' CrossEncoder",
        description=(
            "Runs every engine on the same model directory and pairs, alternating repeats, and reports the "
            "median pairs/s, ratios against sentence-transformers, achieved GFLOP/s next to the measured fp32 "
            "matmul peak, peak memory and each mode's score deviation. Writes JSON and a PNG chart."
        ),
    )
    bench.add_argument(
        "--model", required=True, type=Path, metavar="DIR", help="model directory (e.g. from `init`)"
    )
    bench.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="BEIR-format dataset directory"
    )
    bench.add_argument("--workload", choices=WORKLOADS, default="beir-short")
    bench.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated, from {', '.join(ENGINES)} (default: %(default)s)",
    )
    bench.add_argument("--repeats", type=int, default=3, help="timed passes per engine, alternating (median)")
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads for every engine")
    bench.add_argument("--batch-tokens", type=int, default=None, help="our token budget per batch")
    bench.add_argument("--st-batch-size", type=int, default=32, help="CrossEncoder.predict batch size")
    bench.add_argument("--num-queries", type=int, default=10, help="beir-short: queries (100 documents each)")
    bench.add_argument("--docs-per-query", type=int, default=100)
    bench.add_argument("--num-docs", type=int, default=20, help="long: number of documents")
    bench.add_argument("--min-tokens", type=int, default=2000)
    bench.add_argument("--max-tokens", type=int, default=8000)
    bench.add_argument(
        "--max-length", type=int, default=None, help="default: 512 (beir-short), the model's (long)"
    )
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--out", type=Path, default=Path("bench-results/bench.json"), help="JSON report path")
    bench.add_argument("--chart", type=Path, default=None, help="PNG chart path (default: next to --out)")
    bench.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    from ..benchmarking.runner import BenchConfig, format_table, run_bench, write_chart, write_json

    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    config = BenchConfig(
        model_dir=str(args.model),
        data_dir=str(args.data),
        workload=args.workload,
        engines=engines,
        repeats=args.repeats,
        device=args.device,
        threads=args.threads,
        batch_tokens=args.batch_tokens,
        st_batch_size=args.st_batch_size,
        num_queries=args.num_queries,
        docs_per_query=args.docs_per_query,
        num_docs=args.num_docs,
        min_tokens=args.min_tokens,
        max_tokens=args.max_tokens,
        max_length=args.max_length,
        seed=args.seed,
    )
    report = run_bench(config)
    print(format_table(report))
    json_path = write_json(report, args.out)
    chart_path = write_chart(report, args.chart or json_path.with_suffix(".png"))
    print(f"wrote {json_path} and {chart_path}")
    return 0
