"""Reproduce the speed table in the README / docs/speed.md.

    .venv/bin/python benchmarks/speed.py --tokenizer ../shared/tokenizers/modernbert \
        --data ../shared/data/scifact --out bench-results

Builds random-weight 17m and 32m models (same speed as trained ones) with
`ettin_rerank.family.create_random_reranker`, then runs `ettin-rerank bench` for each row.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROWS = [
    # (size, workload, engines, extra arguments)
    ("17m", "beir-short", "ours-exact,ours-int8,ours-bf16,st-default,st-bf16", ["--num-queries", "1"]),
    ("17m", "long", "ours-exact,ours-int8,st-default", ["--num-docs", "6"]),
    ("32m", "long", "ours-exact,ours-int8,st-default", ["--num-docs", "6"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from ettin_rerank.family import create_random_reranker

    args.out.mkdir(parents=True, exist_ok=True)
    for size, workload, engines, extra in ROWS:
        model_dir = args.out / f"ettin-{size}"
        if not (model_dir / "config.json").is_file():
            create_random_reranker(size, args.tokenizer, model_dir, seed=0)
        command = [
            sys.executable, "-m", "ettin_rerank", "bench",
            "--model", str(model_dir), "--data", str(args.data), "--workload", workload,
            "--engines", engines, "--repeats", str(args.repeats), "--threads", str(args.threads),
            "--out", str(args.out / f"{size}-{workload}.json"), *extra,
        ]  # fmt: skip
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)

    import json

    from ettin_rerank.benchmarking.runner import format_markdown

    reports = [
        json.loads((args.out / f"{size}-{workload}.json").read_text()) for size, workload, _, _ in ROWS
    ]
    table = format_markdown(reports)
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
