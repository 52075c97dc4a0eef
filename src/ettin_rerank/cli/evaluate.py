"""`evaluate`, `index` and `search`: retrieve-then-rerank over BEIR data and a user's documents."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..models import resolve_model

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "dense", "hybrid")


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="NDCG@10 and friends for a first stage and after reranking, on a BEIR dataset",
        description="Retrieve with a first stage, rerank its top-k, and report metrics before and after. "
        "Writes JSON plus a Markdown table and a PNG chart next to it.",
    )
    evaluate.add_argument(
        "dataset_dir",
        type=Path,
        help="BEIR dataset directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
    )
    model = evaluate.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        "-m",
        help="reranker directory or Hub id (default: $ETTIN_RERANK_MODEL, else the bundled model)",
    )
    model.add_argument("--no-rerank", action="store_true", help="evaluate the first stage alone")
    evaluate.add_argument("--first-stage", choices=FIRST_STAGES, default="bm25")
    evaluate.add_argument(
        "--top-k", type=int, default=100, help="documents per query to rerank (default 100)"
    )
    evaluate.add_argument("--split", default="test", help="qrels split (default test)")
    evaluate.add_argument(
        "--nano", type=int, metavar="N", help="evaluate a NanoBEIR-style subset of N queries"
    )
    evaluate.add_argument(
        "--nano-max-corpus", type=int, default=5000, help="corpus cap of the --nano subset (default 5000)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the --nano subset (default 0)")
    evaluate.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("results.json"),
        help="JSON path (.md and .png written beside it)",
    )
    _add_model_options(evaluate)
    evaluate.add_argument(
        "--dense-model", help="bi-encoder for --first-stage dense/hybrid (default all-MiniLM-L6-v2)"
    )
    evaluate.add_argument(
        "--cache-dir", type=Path, help="embedding cache (default ~/.cache/ettin-rerank/embeddings)"
    )
    evaluate.set_defaults(handler=run_evaluate)

    index = subparsers.add_parser(
        "index",
        help="index your documents for `search`",
        description="Index a BEIR corpus.jsonl or a directory of .txt/.md files (one document per file).",
    )
    index.add_argument(
        "corpus", type=Path, help="corpus.jsonl, a BEIR dataset directory, or a directory of .txt/.md files"
    )
    index.add_argument("-o", "--output", type=Path, required=True, help="index directory to write")
    index.add_argument("--first-stage", choices=FIRST_STAGES, default="bm25")
    index.add_argument("--dense-model", help="bi-encoder for dense/hybrid (default all-MiniLM-L6-v2)")
    index.add_argument("--device", default="cpu")
    index.set_defaults(handler=run_index)

    search = subparsers.add_parser(
        "search",
        help="search an index built by `index`, reranking the first stage's top-k",
        description="Retrieve the top-k with the index's first stage (or BM25 over a folder of documents), "
        "rerank with --model (default: the bundled reranker), print the best n.",
    )
    search.add_argument(
        "index_dir",
        type=Path,
        metavar="INDEX_OR_DOCS",
        help="an index from `ettin-rerank index`, or a folder of .txt/.md files / a corpus.jsonl (BM25 in memory)",
    )
    search.add_argument("query")
    search.add_argument(
        "--model",
        "-m",
        help="reranker directory or Hub id (default: $ETTIN_RERANK_MODEL, else the bundled model)",
    )
    search.add_argument(
        "--top-k", type=int, default=100, help="first-stage candidates to rerank (default 100)"
    )
    search.add_argument("-n", type=int, default=10, help="results to print (default 10)")
    search.add_argument(
        "--no-rerank", action="store_true", help="print the first stage's ranking, without a reranker"
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    search.add_argument("--snippet-width", type=int, default=200)
    _add_model_options(search)
    search.set_defaults(handler=run_search)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="device for the reranker (default cpu)")
    parser.add_argument("--dtype", default="float32", help="reranker weights dtype (default float32)")
    parser.add_argument(
        "--max-length", type=int, help="truncate pairs to this many tokens (default: the model's)"
    )
    parser.add_argument("--batch-tokens", type=int, help="token budget per batch (default: the engine's)")


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def _load_reranker(args):
    choice = resolve_model(getattr(args, "model", None))
    if choice is None:
        return None
    from .. import Reranker

    logger.info("reranking with %s", choice.describe())
    return Reranker.from_pretrained(
        choice.name_or_path, device=args.device, dtype=args.dtype, max_length=args.max_length
    )


def run_evaluate(args) -> int:
    from ..evaluation import evaluate, write_report

    _check_positive("--top-k", args.top_k)
    _check_positive("--nano", args.nano)
    reranker = None if args.no_rerank else _load_reranker(args)
    if reranker is None and not args.no_rerank:
        print(
            "note: no --model given and no default model is bundled; evaluating the first stage only",
            file=sys.stderr,
        )
    report = evaluate(
        args.dataset_dir,
        reranker=reranker,
        first_stage=args.first_stage,
        top_k=args.top_k,
        split=args.split,
        nano=args.nano,
        nano_max_corpus=args.nano_max_corpus,
        seed=args.seed,
        dense_model=args.dense_model,
        device=args.device,
        cache_dir=args.cache_dir,
        batch_tokens=args.batch_tokens,
    )
    paths = write_report(report, args.output)
    from ..evaluation.reports import render_markdown

    print(render_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_index(args) -> int:
    from ..retrieval import SearchIndex, load_user_corpus

    corpus = load_user_corpus(args.corpus)
    index = SearchIndex.build(
        corpus, first_stage=args.first_stage, dense_model=args.dense_model, device=args.device
    )
    index.save(args.output)
    print(f"indexed {len(corpus)} documents ({args.first_stage}) into {args.output}")
    return 0


def run_search(args) -> int:
    from ..retrieval import SearchIndex

    _check_positive("--top-k", args.top_k)
    _check_positive("-n", args.n)
    index = SearchIndex.open(args.index_dir, device=args.device)
    reranker = None if args.no_rerank else _load_reranker(args)
    hits = index.search(
        args.query, top_k=args.top_k, n=args.n, reranker=reranker, batch_tokens=args.batch_tokens
    )
    if args.json:
        payload = {
            "query": args.query,
            "reranked": reranker is not None,
            "results": [hit.to_dict(args.snippet_width) for hit in hits],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results (no document shares a term with the query)")
        return 0
    for hit in hits:
        if reranker is not None:
            where = f"rerank score {hit.score:.4f}; {index.first_stage} #{hit.first_stage_rank}"
        else:
            where = f"{index.first_stage} score {hit.score:.4f}"
        heading = f"{hit.rank:>3}. {hit.doc_id}  ({where})"
        print(heading)
        if hit.title:
            print(f"     {hit.title}")
        print(f"     {hit.snippet(args.snippet_width)}")
    return 0
