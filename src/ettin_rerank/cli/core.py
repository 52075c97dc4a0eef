"""Core commands: `init`, `rank`, `info`."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from ..config.family import SIZES, RandomRerankerOptions
from ..models import require_model
from .options import Flags, add_loading_options, add_model_argument, defaults_of, load_reranker


def register(subparsers) -> None:
    subparsers.add_parser(
        "init", help="write a random-weight reranker of an Ettin size", add_arguments=add_init_arguments
    ).set_defaults(handler=run_init)
    subparsers.add_parser(
        "rank", help="rank documents for one query", add_arguments=add_rank_arguments
    ).set_defaults(handler=run_rank)
    subparsers.add_parser(
        "info",
        help="describe a model: architecture, parameters, max length, layout",
        add_arguments=add_info_arguments,
    ).set_defaults(handler=run_info)


def add_init_arguments(init: argparse.ArgumentParser) -> None:
    flags = Flags(init, defaults_of(RandomRerankerOptions))
    init.add_argument("output_dir", type=Path, metavar="OUT_DIR")
    init.add_argument("--size", required=True, choices=list(SIZES), help="Ettin size (tiny is for tests)")
    init.add_argument(
        "--tokenizer", required=True, type=Path, metavar="DIR", help="directory with tokenizer.json"
    )
    flags.add("--seed")
    flags.add("--max-length")


def add_rank_arguments(rank: argparse.ArgumentParser) -> None:
    rank.add_argument(
        "documents",
        nargs="?",
        default="-",
        metavar="DOCS_FILE|-",
        help='JSONL ({"text": ...} or strings) or one document per line; - reads stdin (default)',
    )
    add_model_argument(rank, "--model", "-m")
    rank.add_argument("--query", "-q", required=True)
    rank.add_argument("--top-k", type=int, default=None)
    rank.add_argument(
        "--activation",
        choices=["sigmoid", "calibrated"],
        default=None,
        help="sigmoid (fp32), or calibrated: P(relevant) from the model's calibration.json (default: raw logits)",
    )
    rank.add_argument(
        "--long-documents",
        choices=["chunk", "truncate"],
        default="chunk",
        help="chunk: score a document that does not fit in overlapping windows, keep the best (default); "
        "truncate: cut it to the model's max length",
    )
    add_loading_options(rank)
    rank.add_argument("--json", action="store_true", help="machine-readable output")


def add_info_arguments(info: argparse.ArgumentParser) -> None:
    add_model_argument(info, "model", nargs="?")
    info.add_argument("--json", action="store_true")


def run_init(args) -> int:
    from ..family import create_random_reranker  # torch: imported when the command runs

    out = create_random_reranker(
        args.size, args.tokenizer, args.output_dir, seed=args.seed, max_length=args.max_length
    )
    print(f"wrote a random-weight {args.size} reranker to {out}")
    return 0


def read_documents(source: str) -> list[str]:
    """Documents from a JSONL file (strings or {"text": ...}) or a plain file with one document per line."""
    if source == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"documents file {path} does not exist")
        text, name = path.read_text(encoding="utf-8"), str(path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].lstrip().startswith(("{", '"')):
        return lines
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}:{number}: not valid JSON ({error.msg})") from None
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            title = item.get("title")
            documents.append(f"{title} {item['text']}" if isinstance(title, str) and title else item["text"])
        elif isinstance(item, str):
            documents.append(item)
        else:
            raise ValueError(f'{name}:{number}: expected a string or an object with a "text" string')
    return documents


def run_rank(args) -> int:
    if args.top_k is not None and args.top_k < 0:
        raise ValueError(f"--top-k must be >= 0, got {args.top_k}")
    documents = read_documents(args.documents)
    from ..inference.reranker import TruncationWarning

    reranker = load_reranker(require_model(args.model), args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)  # the command reports the count itself
        ranked = reranker.rank(
            args.query,
            documents,
            return_documents=True,
            activation=args.activation,
            long_documents=args.long_documents,
        )
    # counted over every document, not only the ones shown
    truncated = sum(item.get("truncated", False) for item in ranked)
    results = ranked if args.top_k is None else ranked[: args.top_k]
    if args.json:
        print(
            json.dumps(
                {"model": reranker.name, "query": args.query, "truncated": truncated, "results": results},
                ensure_ascii=False,
            )
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.query!r}: {len(documents)} documents, {reranker.name}")
    table.add_column("rank", justify="right")
    table.add_column("index", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    for position, item in enumerate(results, start=1):
        start, end = item.get("best_chunk", (0, len(item["document"])))
        snippet = " ".join(item["document"][start:end].split())  # the window that scored best
        table.add_row(
            str(position),
            str(item["index"]),
            f"{item['score']:.4f}",
            snippet[:100] + ("…" if len(snippet) > 100 else ""),
        )
    Console().print(table)
    if truncated:
        print(
            f"note: {truncated} of {len(documents)} documents were cut to the model's {reranker.max_length} "
            "tokens (--long-documents truncate): the rest of them was not read",
            file=sys.stderr,
        )
    return 0


def describe_model(model: str | None) -> dict:
    from ..inference.cpu import cpu_kernels  # torch: imported when the command runs
    from ..inference.modes import cpu_auto_probe

    choice = require_model(model)
    reranker = load_reranker(choice)
    config = reranker.model.config
    return {
        "model": choice.name_or_path,
        "source": choice.source,
        "architecture": reranker.architecture,
        "layout": reranker.layout,
        "parameters": reranker.num_parameters,
        "max_length": reranker.max_length,
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "vocab_size": config.vocab_size,
        "license": reranker.license or "not stated in the model card",
        "evaluation": reranker.evaluation or "not stated in the model card",
        "relevance_score": reranker.probability_activation,
        "cpu": cpu_kernels().describe(),  # which kernels this CPU has
        "dtype_auto": cpu_auto_probe().describe(),  # what dtype="auto" picks on this CPU, and the measured ratio
    }


def run_info(args) -> int:
    info = describe_model(args.model)
    if args.json:
        print(json.dumps(info))
    else:
        cpu = info.pop("cpu")
        auto = info.pop("dtype_auto")
        lines = {key: f"{value:,}" if key == "parameters" else value for key, value in info.items()}
        lines["cpu_flags"] = f"{' '.join(cpu['flags']) or 'none'} (torch: {cpu['torch_capability']})"
        lines["cpu_native_bf16"] = "yes" if cpu["native_bf16"] else "no"
        lines["cpu_native_int8"] = "yes" if cpu["native_int8"] else "no"
        lines["cpu_bf16_speedup"] = (
            f"{auto['bf16_speedup']:.2f}x fp32 ({auto['source']} at {auto['threads']} threads; "
            f"auto takes bf16 from {auto['bf16_min_speedup']:.2f}x)"
            if auto["bf16_speedup"] is not None
            else auto["source"]
        )
        lines["dtype_auto"] = auto["dtype"]
        width = max(map(len, lines))
        for key, value in lines.items():
            print(f"{key:<{width}}  {value}")
    return 0
