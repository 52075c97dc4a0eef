"""`ettin-rerank bench`: our engine in each mode against Sentence Transformers, same pairs, same machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..benchmarking.engines import ENGINES
from ..benchmarking.runner import BenchConfig, format_table, run_bench, write_chart, write_json
from ..benchmarking.workloads import SHORT_MAX_LENGTH, WORKLOADS
from .options import add_flag, call_with_flags, defaults_of

BENCH = defaults_of(BenchConfig)


def register(subparsers) -> None:
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
        "--model",
        dest="model_dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="model directory (e.g. from `init`)",
    )
    bench.add_argument(
        "--data",
        dest="data_dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="BEIR-format dataset directory",
    )
    add_flag(bench, BENCH, "--workload", choices=WORKLOADS)
    bench.add_argument(
        "--engines",
        default=",".join(BENCH.engines),
        help=f"comma-separated, from {', '.join(ENGINES)} (default: %(default)s)",
    )
    add_flag(bench, BENCH, "--repeats", "timed passes per engine, alternating (median)")
    add_flag(bench, BENCH, "--device")
    add_flag(bench, BENCH, "--threads", "torch CPU threads for every engine", type=int)
    add_flag(bench, BENCH, "--batch-tokens", "our token budget per batch", type=int)
    add_flag(bench, BENCH, "--st-batch-size", "CrossEncoder.predict batch size")
    add_flag(bench, BENCH, "--num-queries", "beir-short: queries, --docs-per-query documents each")
    add_flag(bench, BENCH, "--docs-per-query")
    add_flag(bench, BENCH, "--num-docs", "long: number of documents")
    add_flag(bench, BENCH, "--min-tokens")
    add_flag(bench, BENCH, "--max-tokens")
    add_flag(
        bench,
        BENCH,
        "--max-length",
        f"default: {SHORT_MAX_LENGTH} (beir-short), the model's (long)",
        type=int,
    )
    add_flag(bench, BENCH, "--seed")
    bench.add_argument("--out", type=Path, default=Path("bench-results/bench.json"), help="JSON report path")
    bench.add_argument("--chart", type=Path, default=None, help="PNG chart path (default: next to --out)")
    bench.set_defaults(handler=run_bench_command)


def bench_config(args: argparse.Namespace) -> BenchConfig:
    return call_with_flags(
        BenchConfig,
        args,
        model_dir=str(args.model_dir),
        data_dir=str(args.data_dir),
        engines=[name.strip() for name in args.engines.split(",") if name.strip()],
    )


def run_bench_command(args: argparse.Namespace) -> int:
    report = run_bench(bench_config(args))
    print(format_table(report))
    json_path = write_json(report, args.out)
    chart_path = write_chart(report, args.chart or json_path.with_suffix(".png"))
    print(f"wrote {json_path} and {chart_path}")
    return 0
