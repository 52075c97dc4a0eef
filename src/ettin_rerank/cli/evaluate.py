"""`evaluate`: retrieve-then-rerank over BEIR data, metrics before and after."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import (
    Flags,
    add_dataset_argument,
    add_dense_model_argument,
    add_loading_options,
    add_model_argument,
    add_quiet_argument,
    call_with_flags,
    check_positive,
    defaults_of,
    optional_reranker,
    show_progress,
)

# The library (evaluation/, retrieval/: numpy, bm25s) is imported when the command parses its own
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


def add_evaluate_arguments(evaluate: argparse.ArgumentParser) -> None:
    from .. import evaluation
    from ..retrieval.first_stage import FIRST_STAGE_METAVAR, first_stage_spec

    EVALUATE = defaults_of(evaluation.EvaluationSettings)
    flags = Flags(evaluate, EVALUATE)
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
    flags.add("--top-k", "documents per query to rerank (default %(default)s)")
    flags.add("--split", "qrels split (default %(default)s)")
    flags.add(
        "--qrels",
        "TREC qrels (qid iter docid relevance) to use instead of qrels/<split>.tsv; graded as given",
        type=Path,
        metavar="FILE",
    )
    flags.add(
        "--keep-identical-ids",
        "keep results whose id is their query's (by default they are dropped before scoring, as BEIR does)",
        action="store_true",
    )
    flags.add(
        "--save-run",
        "write the final ranking as a TREC run to OUT (with a reranker, the first stage's too, when "
        "retrieved here: run.trec -> run.first-stage.trec)",
        type=Path,
        metavar="OUT",
    )
    flags.add("--nano", "evaluate a NanoBEIR-style subset of N queries", type=int, metavar="N")
    flags.add("--nano-max-corpus", "corpus cap of the --nano subset (default %(default)s)")
    flags.add("--seed", "seed of the --nano subset (default %(default)s)")
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
    flags.add("--cache-dir", "embedding cache (default ~/.cache/ettin-rerank/embeddings)", type=Path)


def run_evaluate(args) -> int:
    from ..evaluation import EvaluationSettings, evaluate, render_markdown, write_report

    check_positive("--top-k", args.top_k)
    check_positive("--nano", args.nano)
    reranker = optional_reranker(args)
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
