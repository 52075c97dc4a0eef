"""`ettin-rerank bench`: our engine in each mode against Sentence Transformers, ONNX Runtime and
OpenVINO, same pairs, same machine."""

from __future__ import annotations

import argparse
from pathlib import Path

# the bench's defaults and choices (benchmarking/ imports torch: imported when the command runs)
from ..config.bench import ENGINES, SHORT_MAX_LENGTH, WORKLOADS, BenchConfig
from .options import Flags, add_quiet_argument, call_with_flags, defaults_of, show_progress


def register(subparsers) -> None:
    subparsers.add_parser(
        "bench",
        help="measure pairs/s of our engine (each mode) against sentence-transformers, ONNX Runtime and OpenVINO",
        description=(
            "Runs every engine on the same model directory and pairs, alternating repeats, and reports the "
            "median pairs/s, ratios against sentence-transformers, achieved GFLOP/s next to the measured fp32 "
            "matmul peak, peak memory and each mode's score deviation. The onnx-ours* and openvino* engines run "
            "our ONNX export (encoder + head, padded batches); an engine that cannot load here is reported with "
            "the reason, not fatal. Prints this CPU's kernel flags. Writes JSON and a PNG chart."
        ),
        add_arguments=add_bench_arguments,
        needs_extra="eval",  # sentence-transformers (the baseline), scipy and matplotlib (the report)
    ).set_defaults(handler=run_bench_command)


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    defaults = defaults_of(BenchConfig)
    flags = Flags(bench, defaults)
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
    flags.add("--workload", choices=WORKLOADS)
    bench.add_argument(
        "--engines",
        default=",".join(defaults.engines),
        help=f"comma-separated, from {', '.join(ENGINES)} (default: %(default)s)",
    )
    flags.add("--repeats", "timed passes per engine, alternating (median)")
    flags.add("--device")
    flags.add("--threads", "torch CPU threads for every engine", type=int)
    flags.add("--batch-tokens", "our token budget per batch", type=int)
    flags.add("--st-batch-size", "CrossEncoder.predict batch size")
    flags.add("--num-queries", "beir-short: queries, --docs-per-query documents each")
    flags.add("--docs-per-query")
    flags.add("--num-docs", "long: number of documents")
    flags.add("--min-tokens")
    flags.add("--max-tokens")
    flags.add("--max-length", f"default: {SHORT_MAX_LENGTH} (beir-short), the model's (long)", type=int)
    flags.add("--seed")
    flags.add("--workdir", "where ONNX exports are written (default: a temporary folder)", type=str)
    bench.add_argument("--out", type=Path, default=Path("bench-results/bench.json"), help="JSON report path")
    bench.add_argument("--chart", type=Path, default=None, help="PNG chart path (default: next to --out)")
    add_quiet_argument(bench)


def bench_config(args: argparse.Namespace) -> BenchConfig:
    return call_with_flags(
        BenchConfig,
        args,
        model_dir=str(args.model_dir),
        data_dir=str(args.data_dir),
        engines=[name.strip() for name in args.engines.split(",") if name.strip()],
    )


def run_bench_command(args: argparse.Namespace) -> int:
    progress = show_progress(args)  # before the engines' libraries are imported: it quiets theirs
    from ..benchmarking.runner import format_table, run_bench, write_chart, write_json

    report = run_bench(bench_config(args), show_progress=progress)
    print(format_table(report))
    json_path = write_json(report, args.out)
    chart_path = write_chart(report, args.chart or json_path.with_suffix(".png"))
    print(f"wrote {json_path} and {chart_path}")
    return 0
