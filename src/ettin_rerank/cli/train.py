"""`mine`, `score-teacher`, `select`, `distill`: the Ettin distillation recipe, four resumable steps.

The steps' code needs the `train` extra (pyarrow, ray), and their flags' defaults are the steps' own
(`mine_candidates`, `score_teacher`, `select_training_pairs`, `DistillConfig`), decided in
`config/training.py` and `config/distill.py` so that parsing imports neither torch nor pyarrow: each
command adds its flags only when it runs (see `CommandParser`) and imports its step only then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config.distill import LOSSES, PRECISIONS, DistillConfig
from ..config.family import SIZES
from ..config.training import TEACHER_BACKENDS, MiningOptions, SelectionOptions, TeacherScoringOptions
from .options import (
    Flags,
    add_dataset_argument,
    add_dense_model_argument,
    call_with_flags,
    defaults_of,
)


def register(subparsers) -> None:
    """The four steps, each a command that needs the `train` extra: name, help, description, the
    function adding its flags and the one running it."""
    steps = (
        (
            "mine",
            "distillation step 1: first-stage candidates (plus judged positives) per query",
            "Retrieve the top --depth candidates per judged query of --split (bounded by the corpus size) "
            "and add every judged positive the first stage missed. Writes Parquet shards; reruns resume.",
            add_mine_arguments,
            run_mine,
        ),
        (
            "score-teacher",
            "distillation step 2: the teacher's raw logit for every candidate pair (sharded, resumable)",
            "Score candidates with a teacher: any model `Reranker` loads, or a sentence-transformers "
            "CrossEncoder directory (identity activation). A killed run restarted with the same arguments "
            "continues where it stopped; every pair ends up scored exactly once.",
            add_score_teacher_arguments,
            run_score_teacher,
        ),
        (
            "select",
            "distillation step 3: the recipe's subsampling by teacher rank",
            "Per query: all positives + the top --top-hard + a quantile-stratified sample up to --keep; "
            "then --per-query pairs, half from the top of the teacher ranking, half from a medium band. "
            "Deterministic by --seed. Writes OUTPUT/train/ (and OUTPUT/heldout/ with --heldout-queries).",
            add_select_arguments,
            run_select,
        ),
        (
            "distill",
            "distillation step 4: train a student on the teacher's logits (resumable; torchrun for DDP)",
            "Train a student (an Ettin size from random init, a reranker directory, or --init-encoder) "
            "on teacher logits with pointwise MSE. Evaluates every --eval-every of training on a NanoBEIR-style "
            "subset of --eval-dataset (BM25 top-100, NDCG@10), keeps the best checkpoints and saves the best to "
            "OUTPUT in the Ettin layout. Rerun the same command to resume. Multi-process: "
            "`torchrun --nproc_per_node N -m ettin_rerank distill ...`.",
            add_distill_arguments,
            run_distill,
        ),
    )
    for name, summary, description, add_arguments, handler in steps:
        subparsers.add_parser(
            name, help=summary, description=description, add_arguments=add_arguments, needs_extra="train"
        ).set_defaults(handler=handler)


def add_output_argument(parser: argparse.ArgumentParser, help: str, as_path: bool = True) -> None:
    kind = Path if as_path else str
    parser.add_argument(
        "-o", "--output", dest="output_dir", metavar="OUTPUT", required=True, type=kind, help=help
    )


def add_mine_arguments(mine: argparse.ArgumentParser) -> None:
    from ..retrieval.first_stage import (  # numpy only
        DEFAULT_FIRST_STAGE,
        FIRST_STAGE_METAVAR,
        first_stage_spec,
    )

    flags = Flags(mine, defaults_of(MiningOptions))
    add_dataset_argument(mine)
    flags.add("--split", "qrels split whose queries are mined (default %(default)s)")
    mine.add_argument(
        "--first-stage", type=first_stage_spec, metavar=FIRST_STAGE_METAVAR, default=DEFAULT_FIRST_STAGE
    )
    flags.add("--depth", "candidates per query (default %(default)s)")
    flags.add("--max-queries", "a seeded random subset of this many queries", type=int)
    flags.add("--queries-per-shard")
    flags.add("--seed")
    add_dense_model_argument(mine)
    flags.add("--device")
    add_output_argument(mine, "candidates directory to write")


def add_score_teacher_arguments(score: argparse.ArgumentParser) -> None:
    flags = Flags(score, defaults_of(TeacherScoringOptions))
    score.add_argument(
        "candidates_dir",
        metavar="candidates",
        type=Path,
        help="the output of `mine` (or Parquet with query_id, query, doc_id, document)",
    )
    score.add_argument(
        "--teacher",
        required=True,
        help="teacher model directory or Hub id, or hybrid:DATASET_DIR (bi-encoder cosine + BM25 over that corpus)",
    )
    add_output_argument(score, "scored directory to write")
    flags.add("--backend", choices=TEACHER_BACKENDS)
    flags.add("--workers", "processes (local) or Ray actors, one teacher each")
    flags.add("--shard-size", "pairs per output shard (the unit of resuming)")
    flags.add("--batch-pairs", "pairs per length-sorted scoring batch")
    flags.add("--device")
    flags.add("--dtype", "float32, bfloat16 or float16 (scores come back fp32)")
    flags.add("--max-length", "tokens per pair (default: the teacher's own limit)", type=int)
    flags.add("--batch-tokens", "real tokens per forward pass", type=int)
    flags.add("--ray-address", "Ray cluster address (default: RAY_ADDRESS or a local instance)")


def add_select_arguments(select: argparse.ArgumentParser) -> None:
    defaults = defaults_of(SelectionOptions)
    flags = Flags(select, defaults)
    select.add_argument("scored_dir", metavar="scored", type=Path, help="the output of `score-teacher`")
    add_output_argument(select, "selected directory to write")
    flags.add("--keep")
    flags.add("--per-query")
    flags.add("--top-hard")
    select.add_argument(
        "--medium-band",
        default=",".join(map(str, defaults.medium_band)),
        help="rank quantiles of the kept list (default %(default)s)",
    )
    flags.add("--heldout-queries", "queries set aside for the held-out loss")
    flags.add("--seed")


def add_distill_arguments(distill: argparse.ArgumentParser) -> None:
    """Each flag is named after the `DistillConfig` field it sets (`--lr`: learning_rate)."""
    flags = Flags(distill, defaults_of(DistillConfig))
    flags.add("--student", f"an Ettin size ({', '.join(SIZES)}) or a reranker directory")
    flags.add("--init-encoder", "start from a ModernBERT or BERT encoder directory (fresh Ettin head)")
    flags.add("--keep-layers", "keep only the first N layers of --init-encoder", type=int)
    flags.add("--tokenizer", "tokenizer directory for a random --student SIZE")
    distill.add_argument(
        "--train", required=True, help="the output of `select` (or Parquet with teacher_score)"
    )
    flags.add("--heldout", "held-out pairs (default: TRAIN/heldout when present)")
    flags.add("--eval-dataset", "BEIR directory for the NDCG@10 checkpoint selection")
    flags.add("--eval-split")
    flags.add("--eval-queries", "queries of the NanoBEIR-style subset (default %(default)s)")
    flags.add("--eval-max-corpus")
    # DistillConfig.output_dir is a string (the config is saved as JSON)
    add_output_argument(distill, "output directory (also the resume point)", as_path=False)
    flags.add("--loss", choices=LOSSES)
    flags.add(
        "--lr",
        "learning rate (default: the published value for the size)",
        dest="learning_rate",
        metavar="LR",
        type=float,
    )
    flags.add("--batch-size", "global pairs per step (default: the published value)", type=int)
    step_flags = Flags(distill.add_mutually_exclusive_group(), flags.defaults)  # --max-steps or --epochs
    step_flags.add("--max-steps", type=int)
    step_flags.add("--epochs")
    flags.add("--warmup-ratio")
    flags.add("--weight-decay")
    flags.add("--max-length", "tokens per pair (default %(default)s)")
    flags.add("--micro-batch-tokens", "real tokens per forward (accumulates below the batch)", type=int)
    flags.add("--eval-every", "fraction of training between evaluations")
    flags.add("--keep-best", "best checkpoints kept (default %(default)s)")
    flags.add(
        "--no-eval-at-start",
        "skip measuring the untrained student",
        dest="eval_at_start",
        action="store_false",
    )
    flags.add("--precision", choices=PRECISIONS)
    flags.add("--device", "default: cuda when available, else cpu")
    flags.add("--seed")


def run_mine(args: argparse.Namespace) -> int:
    from ..training.io import count_rows  # the train extra (pyarrow)
    from ..training.mining import mine_candidates

    out = call_with_flags(mine_candidates, args, show_progress=sys.stderr.isatty())
    print(f"candidates: {count_rows(out)} pairs in {out}")
    return 0


def run_score_teacher(args: argparse.Namespace) -> int:
    from ..training.io import count_rows  # the train extra (pyarrow, ray)
    from ..training.scoring import score_teacher

    out = call_with_flags(score_teacher, args)
    print(f"scored: {count_rows(out)} pairs in {out}")
    return 0


def run_select(args: argparse.Namespace) -> int:
    from ..training.selection import select_training_pairs  # the train extra (pyarrow)

    try:
        low, high = (float(x) for x in args.medium_band.split(","))
    except ValueError:
        raise ValueError(
            f"--medium-band must be two fractions like 0.25,0.75, got {args.medium_band!r}"
        ) from None
    out = call_with_flags(select_training_pairs, args, medium_band=(low, high))
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    print(f"selected: {manifest['rows']} pairs in {out}")
    return 0


def distill_config(args: argparse.Namespace) -> DistillConfig:
    return call_with_flags(DistillConfig, args)


def run_distill(args: argparse.Namespace) -> int:
    from ..training.distill import distill  # the train extra (pyarrow)

    result = distill(distill_config(args))
    if result.get("best_checkpoint"):
        evals = [e for e in result["evals"] if e["step"] == result["best_step"]]
        print(f"student: {args.output_dir} (best step {result['best_step']}: {evals[0] if evals else {}})")
    return 0
