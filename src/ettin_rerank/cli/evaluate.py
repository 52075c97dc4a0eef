"""`evaluate`, `index` and `search`: retrieve-then-rerank over BEIR data and a user's documents."""

from __future__ import annotations

import argparse
import json
import logging
import os
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
from .source_defaults import read_constant

# The library (evaluation/, retrieval/: numpy, bm25s) is imported when a command parses its own
# flags or runs, never for `ettin-rerank --help` or another command.

# where search's and the folder reader's defaults are decided (read from source: `search --help`
# imports neither numpy nor bm25s)
SEARCH_DEFAULTS = "ettin_rerank.retrieval.index:SearchIndex.search"
PASSAGE_DEFAULTS = "ettin_rerank.retrieval.files:PassageSettings"
LONG_DOCUMENT_MODES = "ettin_rerank.inference.long_documents:LONG_DOCUMENT_MODES"
# Other libraries' bars and log lines, off for these commands: ours say what runs (set before
# transformers or huggingface_hub is imported, which read them then).
QUIET_LIBRARIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


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
        description="Index a folder of documents (text, Markdown, reStructuredText, HTML, PDF with the pdf "
        "extra; binary and hidden files skipped; long files cut into passages), one file, or a BEIR corpus.jsonl.",
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

    EVALUATE = defaults_of(evaluation.EvaluationSettings)
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
    add_quiet_argument(evaluate)
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
        "corpus",
        type=Path,
        help="a folder of documents, one file, a corpus.jsonl or a BEIR dataset directory",
    )
    index.add_argument("-o", "--output", type=Path, required=True, help="index directory to write")
    # A TREC run answers only its own queries, so `index` offers the stages that index a corpus.
    index.add_argument("--first-stage", choices=INDEXING_FIRST_STAGES, default=INDEX.first_stage)
    add_dense_model_argument(index)
    add_flag(index, INDEX, "--device")
    add_passage_arguments(index)
    add_quiet_argument(index)


def add_search_arguments(search: argparse.ArgumentParser) -> None:
    SEARCH = defaults_of(SEARCH_DEFAULTS)
    search.add_argument(
        "index_dir",
        type=Path,
        metavar="INDEX_OR_DOCS",
        help="an index from `ettin-rerank index`, or a folder of documents / one file / a corpus.jsonl "
        "(BM25 built in memory)",
    )
    search.add_argument("query")
    add_model_argument(search, "--model", "-m")
    add_flag(search, SEARCH, "--top-k", "first-stage candidates to rerank (default %(default)s)")
    add_flag(search, SEARCH, "-n", "results to print (default %(default)s)")
    search.add_argument(
        "--no-rerank", action="store_true", help="print the first stage's ranking, without a reranker"
    )
    add_flag(
        search,
        SEARCH,
        "--long-documents",
        "chunk: score a document longer than the reranker reads in overlapping windows and keep the best, "
        "shown as the snippet (default); truncate: read its start only (counted in the output)",
        choices=read_constant(LONG_DOCUMENT_MODES),
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    search.add_argument("--snippet-width", type=int, default=200)
    add_passage_arguments(search, when="for a folder searched directly")
    add_loading_options(search)
    add_quiet_argument(search)


def add_passage_arguments(parser: argparse.ArgumentParser, when: str = "") -> None:
    PASSAGES = defaults_of(PASSAGE_DEFAULTS)
    parser.add_argument(
        "--passage-words",
        type=int,
        default=PASSAGES.words,
        metavar="N",
        help=f"cut files longer than N words into passages of N words{' ' + when if when else ''}; "
        "0: one document per file (default %(default)s)",
    )
    parser.add_argument(
        "--passage-overlap",
        type=int,
        default=PASSAGES.overlap,
        metavar="N",
        help="words consecutive passages share (default %(default)s)",
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bars (they show only on a terminal anyway)"
    )


def show_progress(args) -> bool:
    """Our own bars: on a terminal, unless --quiet. Other libraries' bars and log lines are off."""
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged PDF is counted in our one warning
    return not args.quiet and sys.stderr.isatty()


def passage_settings(args):
    from ..retrieval.files import PassageSettings

    return PassageSettings(words=args.passage_words, overlap=args.passage_overlap)


def warn_skipped(reading) -> None:
    """The one warning about files skipped while reading documents."""
    summary = reading.summary() if reading is not None else None
    if summary:
        print(f"warning: {summary}", file=sys.stderr)


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def _optional_reranker(args):
    """The reranker, or None with --no-rerank or when no model is named and none is bundled."""
    choice = None if args.no_rerank else resolve_model(args.model)
    return load_reranker(choice, args) if choice else None


def run_evaluate(args) -> int:
    from ..evaluation import EvaluationSettings, evaluate, render_markdown, write_report

    _check_positive("--top-k", args.top_k)
    _check_positive("--nano", args.nano)
    reranker = _optional_reranker(args)
    if reranker is None and not args.no_rerank:
        print(
            "note: no --model given and no default model is bundled; evaluating the first stage only",
            file=sys.stderr,
        )
    settings = call_with_flags(EvaluationSettings, args)
    report = evaluate(args.dataset, reranker, settings, show_progress=show_progress(args))
    paths = write_report(report, args.output)
    print(render_markdown(report))
    print("wrote " + ", ".join(str(p) for p in [*paths.values(), *report.runs.values()]))
    return 0


def run_index(args) -> int:
    from ..retrieval import SearchIndex
    from ..retrieval.user_corpus import read_user_corpus

    progress = show_progress(args)
    passages = passage_settings(args)
    corpus, reading = read_user_corpus(args.corpus, passages, show_progress=progress)
    # our bar covered reading; the first stage's own (bm25s, sentence-transformers) stay off
    index = SearchIndex.build(
        corpus,
        first_stage=args.first_stage,
        dense_model=args.dense_model,
        device=args.device,
        show_progress=False,
        passages=passages,
        reading=reading,
    )
    index.save(args.output)
    split = f" from {reading.files_read} files" if reading.passages != reading.files_read else ""
    print(f"indexed {len(corpus)} documents{split} ({args.first_stage}) into {args.output}")
    warn_skipped(reading)
    return 0


def run_search(args) -> int:
    from ..retrieval import SearchIndex

    _check_positive("--top-k", args.top_k)
    _check_positive("-n", args.n)
    progress = show_progress(args)
    index = SearchIndex.open(
        args.index_dir, device=args.device, passages=passage_settings(args), show_progress=progress
    )
    warn_skipped(index.reading)
    reranker = _optional_reranker(args)
    hits = index.search(
        args.query,
        top_k=args.top_k,
        n=args.n,
        reranker=reranker,
        long_documents=args.long_documents,
        show_progress=progress,
    )
    truncated = sum(hit.truncated for hit in hits)
    if args.json:
        payload = {
            "query": args.query,
            "reranked": reranker is not None,
            "long_documents": args.long_documents if reranker is not None else None,
            "truncated": truncated,
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
        if hit.truncated:
            where += "; truncated"
        position = f", passage {hit.passage}" if hit.passage is not None else ""
        print(f"{hit.rank:>3}. {hit.file}{position}  ({where})")
        if hit.title:
            print(f"     {hit.title}")
        print(f"     {hit.snippet(args.snippet_width)}")
    if truncated:
        print(
            f"note: {truncated} result(s) above were cut to the reranker's {reranker.max_length} tokens "
            "(--long-documents truncate): the rest of those documents was not read",
            file=sys.stderr,
        )
    return 0
