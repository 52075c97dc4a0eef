"""`evaluate`, `index` and `search`: retrieve-then-rerank over BEIR data and a user's documents."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..models import resolve_model
from .options import (
    add_dataset_argument,
    add_dense_model_argument,
    add_flag,
    add_loading_options,
    add_model_argument,
    call_with_flags,
    defaults_of,
    load_reranker,
)

# The library (evaluation/, retrieval/: numpy, bm25s) is imported when a command parses its own
# flags or runs, never for `ettin-rerank --help` or another command.


def register(subparsers) -> None:
    subparsers.add_parser(
        "evaluate",
        help="NDCG@10 and friends for a first stage and after reranking, on a BEIR dataset",
        description="Retrieve with a first stage, rerank its top-k, and report metrics before and after. "
        "Writes JSON plus a Markdown table and a PNG chart next to it.",
        add_arguments=add_evaluate_arguments,
        needs_extra="eval",  # matplotlib draws the chart every run writes
    ).set_defaults(handler=run_evaluate)
    subparsers.add_parser(
        "index",
        help="index your documents for `search`",
        description="Index a BEIR corpus.jsonl or a directory of .txt/.md files (one document per file).",
        add_arguments=add_index_arguments,
    ).set_defaults(handler=run_index)
    subparsers.add_parser(
        "search",
        help="search an index built by `index`, reranking the first stage's top-k",
        description="Retrieve the top-k with the index's first stage (or BM25 over a folder of documents), "
        "rerank with --model (default: the bundled reranker), print the best n.",
        add_arguments=add_search_arguments,
    ).set_defaults(handler=run_search)


def add_evaluate_arguments(evaluate: argparse.ArgumentParser) -> None:
    from .. import evaluation
    from ..retrieval.first_stage import FIRST_STAGE_METAVAR, first_stage_spec

    EVALUATE = defaults_of(evaluation.evaluate)
    add_dataset_argument(evaluate, dest="dataset")
    model = evaluate.add_mutually_exclusive_group()
    add_model_argument(model, "--model", "-m")
    model.add_argument("--no-rerank", action="store_true", help="evaluate the first stage alone")
    evaluate.add_argument(
        "--first-stage",
        type=first_stage_spec,
        default=EVALUATE.first_stage,
        metavar=FIRST_STAGE_METAVAR,
        help="retrieve with bm25, dense or hybrid, or rerank a TREC run file (run:FILE: qid Q0 docid rank score tag) "
        "(default %(default)s)",
    )
    add_flag(evaluate, EVALUATE, "--top-k", "documents per query to rerank (default %(default)s)")
    add_flag(evaluate, EVALUATE, "--split", "qrels split (default %(default)s)")
    add_flag(
        evaluate,
        EVALUATE,
        "--qrels",
        "TREC qrels (qid iter docid relevance) to use instead of qrels/<split>.tsv; graded as given",
        type=Path,
        metavar="FILE",
    )
    add_flag(
        evaluate,
        EVALUATE,
        "--keep-identical-ids",
        "keep results whose id is their query's (by default they are dropped before scoring, as BEIR does)",
        action="store_true",
    )
    add_flag(
        evaluate,
        EVALUATE,
        "--save-run",
        "write the final ranking as a TREC run to OUT (with a reranker, the first stage's too, when "
        "retrieved here: run.trec -> run.first-stage.trec)",
        type=Path,
        metavar="OUT",
    )
    add_flag(
        evaluate, EVALUATE, "--nano", "evaluate a NanoBEIR-style subset of N queries", type=int, metavar="N"
    )
    add_flag(evaluate, EVALUATE, "--nano-max-corpus", "corpus cap of the --nano subset (default %(default)s)")
    add_flag(evaluate, EVALUATE, "--seed", "seed of the --nano subset (default %(default)s)")
    evaluate.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("results.json"),
        help="JSON path (.md and .png written beside it)",
    )
    add_loading_options(evaluate)
    add_dense_model_argument(evaluate)
    add_flag(
        evaluate,
        EVALUATE,
        "--cache-dir",
        "embedding cache (default ~/.cache/ettin-rerank/embeddings)",
        type=Path,
    )


def add_index_arguments(index: argparse.ArgumentParser) -> None:
    from ..retrieval import SearchIndex
    from ..retrieval.first_stage import INDEXING_FIRST_STAGES

    INDEX = defaults_of(SearchIndex.build)
    index.add_argument(
        "corpus", type=Path, help="corpus.jsonl, a BEIR dataset directory, or a directory of .txt/.md files"
    )
    index.add_argument("-o", "--output", type=Path, required=True, help="index directory to write")
    # A TREC run answers only its own queries, so `index` offers the stages that index a corpus.
    index.add_argument("--first-stage", choices=INDEXING_FIRST_STAGES, default=INDEX.first_stage)
    add_dense_model_argument(index)
    add_flag(index, INDEX, "--device")


def add_search_arguments(search: argparse.ArgumentParser) -> None:
    # read from the source: `search --help`, the main job's, imports neither numpy nor bm25s
    SEARCH = defaults_of("ettin_rerank.retrieval.index:SearchIndex.search")
    search.add_argument(
        "index_dir",
        type=Path,
        metavar="INDEX_OR_DOCS",
        help="an index from `ettin-rerank index`, or a folder of .txt/.md files / a corpus.jsonl (BM25 in memory)",
    )
    search.add_argument("query")
    add_model_argument(search, "--model", "-m")
    add_flag(search, SEARCH, "--top-k", "first-stage candidates to rerank (default %(default)s)")
    add_flag(search, SEARCH, "-n", "results to print (default %(default)s)")
    search.add_argument(
        "--no-rerank", action="store_true", help="print the first stage's ranking, without a reranker"
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    search.add_argument("--snippet-width", type=int, default=200)
    add_loading_options(search)


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def _optional_reranker(args):
    """The reranker, or None with --no-rerank or when no model is named and none is bundled."""
    choice = None if args.no_rerank else resolve_model(args.model)
    return load_reranker(choice, args) if choice else None


def run_evaluate(args) -> int:
    from ..evaluation import evaluate, render_markdown, write_report

    _check_positive("--top-k", args.top_k)
    _check_positive("--nano", args.nano)
    reranker = _optional_reranker(args)
    if reranker is None and not args.no_rerank:
        print(
            "note: no --model given and no default model is bundled; evaluating the first stage only",
            file=sys.stderr,
        )
    report = call_with_flags(evaluate, args, reranker=reranker)
    paths = write_report(report, args.output)
    print(render_markdown(report))
    print("wrote " + ", ".join(str(p) for p in [*paths.values(), *report.runs.values()]))
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
    reranker = _optional_reranker(args)
    hits = index.search(args.query, top_k=args.top_k, n=args.n, reranker=reranker)
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
            where = f"rerank score {hit.score:.4f}; {index.first_stage.name} #{hit.first_stage_rank}"
        else:
            where = f"{index.first_stage.name} score {hit.score:.4f}"
        heading = f"{hit.rank:>3}. {hit.doc_id}  ({where})"
        print(heading)
        if hit.title:
            print(f"     {hit.title}")
        print(f"     {hit.snippet(args.snippet_width)}")
    return 0
