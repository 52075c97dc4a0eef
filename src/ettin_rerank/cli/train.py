"""`mine`, `score-teacher`, `select`, `distill`: the Ettin distillation recipe, four resumable steps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIRST_STAGES = ("bm25", "dense", "hybrid")


def register(subparsers) -> None:
    mine = subparsers.add_parser(
        "mine",
        help="distillation step 1: first-stage candidates (plus judged positives) per query",
        description="Retrieve the top --depth candidates per judged query of --split (bounded by the corpus size) "
        "and add every judged positive the first stage missed. Writes Parquet shards; reruns resume.",
    )
    mine.add_argument(
        "dataset_dir",
        type=Path,
        help="BEIR dataset directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
    )
    mine.add_argument("--split", default="train", help="qrels split whose queries are mined (default train)")
    mine.add_argument("--first-stage", choices=FIRST_STAGES, default="bm25")
    mine.add_argument("--depth", type=int, default=2048, help="candidates per query (default 2048)")
    mine.add_argument("--max-queries", type=int, help="a seeded random subset of this many queries")
    mine.add_argument("--queries-per-shard", type=int, default=1000)
    mine.add_argument("--seed", type=int, default=0)
    mine.add_argument("--dense-model", help="bi-encoder for dense/hybrid (default all-MiniLM-L6-v2)")
    mine.add_argument("--device", default="cpu")
    mine.add_argument("-o", "--output", type=Path, required=True, help="candidates directory to write")
    mine.set_defaults(handler=run_mine)

    score = subparsers.add_parser(
        "score-teacher",
        help="distillation step 2: the teacher's raw logit for every candidate pair (sharded, resumable)",
        description="Score candidates with a teacher: any model `Reranker` loads, or a sentence-transformers "
        "CrossEncoder directory (identity activation). A killed run restarted with the same arguments "
        "continues where it stopped; every pair ends up scored exactly once.",
    )
    score.add_argument(
        "candidates",
        type=Path,
        help="the output of `mine` (or Parquet with query_id, query, doc_id, document)",
    )
    score.add_argument(
        "--teacher",
        required=True,
        help="teacher model directory or Hub id, or hybrid:DATASET_DIR (bi-encoder cosine + BM25 over that corpus)",
    )
    score.add_argument("-o", "--output", type=Path, required=True, help="scored directory to write")
    score.add_argument("--backend", choices=("local", "ray"), default="local")
    score.add_argument(
        "--workers", type=int, default=1, help="processes (local) or Ray actors, one teacher each"
    )
    score.add_argument(
        "--shard-size", type=int, default=50_000, help="pairs per output shard (the unit of resuming)"
    )
    score.add_argument("--batch-pairs", type=int, default=1024, help="pairs per length-sorted scoring batch")
    score.add_argument("--device", default="cpu")
    score.add_argument(
        "--dtype", default="float32", help="float32, bfloat16 or float16 (scores come back fp32)"
    )
    score.add_argument("--max-length", type=int, help="tokens per pair (default: the teacher's own limit)")
    score.add_argument("--batch-tokens", type=int, help="real tokens per forward pass")
    score.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or a local instance)")
    score.set_defaults(handler=run_score_teacher)

    select = subparsers.add_parser(
        "select",
        help="distillation step 3: the recipe's subsampling by teacher rank",
        description="Per query: all positives + the top --top-hard + a quantile-stratified sample up to --keep; "
        "then --per-query pairs, half from the top of the teacher ranking, half from a medium band. "
        "Deterministic by --seed. Writes OUTPUT/train/ (and OUTPUT/heldout/ with --heldout-queries).",
    )
    select.add_argument("scored", type=Path, help="the output of `score-teacher`")
    select.add_argument("-o", "--output", type=Path, required=True)
    select.add_argument("--keep", type=int, default=256)
    select.add_argument("--per-query", type=int, default=64)
    select.add_argument("--top-hard", type=int, default=16)
    select.add_argument(
        "--medium-band", default="0.25,0.75", help="rank quantiles of the kept list (default 0.25,0.75)"
    )
    select.add_argument(
        "--heldout-queries", type=int, default=0, help="queries set aside for the held-out loss"
    )
    select.add_argument("--seed", type=int, default=12)
    select.set_defaults(handler=run_select)

    distill = subparsers.add_parser(
        "distill",
        help="distillation step 4: train a student on the teacher's logits (resumable; torchrun for DDP)",
        description="Train a student (an Ettin size from random init, a reranker directory, or --init-encoder) "
        "on teacher logits with pointwise MSE. Evaluates every --eval-every of training on a NanoBEIR-style "
        "subset of --eval-dataset (BM25 top-100, NDCG@10), keeps the best checkpoints and saves the best to "
        "OUTPUT in the Ettin layout. Rerun the same command to resume. Multi-process: "
        "`torchrun --nproc_per_node N -m ettin_rerank distill ...`.",
    )
    distill.add_argument(
        "--student", help="an Ettin size (tiny, 17m, 32m, 68m, 150m, 400m, 1b) or a reranker directory"
    )
    distill.add_argument(
        "--init-encoder", help="start from a ModernBERT or BERT encoder directory (fresh Ettin head)"
    )
    distill.add_argument("--keep-layers", type=int, help="keep only the first N layers of --init-encoder")
    distill.add_argument("--tokenizer", help="tokenizer directory for a random --student SIZE")
    distill.add_argument(
        "--train", required=True, help="the output of `select` (or Parquet with teacher_score)"
    )
    distill.add_argument("--heldout", help="held-out pairs (default: TRAIN/heldout when present)")
    distill.add_argument("--eval-dataset", help="BEIR directory for the NDCG@10 checkpoint selection")
    distill.add_argument("--eval-split", default="test")
    distill.add_argument(
        "--eval-queries", type=int, default=50, help="queries of the NanoBEIR-style subset (default 50)"
    )
    distill.add_argument("--eval-max-corpus", type=int, default=5000)
    distill.add_argument("-o", "--output", required=True, help="output directory (also the resume point)")
    distill.add_argument("--loss", choices=("mse", "margin-mse"), default="mse")
    distill.add_argument("--lr", type=float, help="learning rate (default: the published value for the size)")
    distill.add_argument(
        "--batch-size", type=int, help="global pairs per step (default: the published value)"
    )
    steps = distill.add_mutually_exclusive_group()
    steps.add_argument("--max-steps", type=int)
    steps.add_argument("--epochs", type=float, default=1.0)
    distill.add_argument("--warmup-ratio", type=float, default=0.03)
    distill.add_argument("--weight-decay", type=float, default=0.0)
    distill.add_argument("--max-length", type=int, default=512, help="tokens per pair (default 512)")
    distill.add_argument(
        "--micro-batch-tokens", type=int, help="real tokens per forward (accumulates below the batch)"
    )
    distill.add_argument(
        "--eval-every", type=float, default=0.05, help="fraction of training between evaluations"
    )
    distill.add_argument("--keep-best", type=int, default=2, help="best checkpoints kept (default 2)")
    distill.add_argument(
        "--no-eval-at-start", action="store_true", help="skip measuring the untrained student"
    )
    distill.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    distill.add_argument("--device", help="default: cuda when available, else cpu")
    distill.add_argument("--seed", type=int, default=12)
    distill.set_defaults(handler=run_distill)


def run_mine(args: argparse.Namespace) -> int:
    from ..training.mining import mine_candidates

    out = mine_candidates(
        args.dataset_dir,
        args.output,
        split=args.split,
        first_stage=args.first_stage,
        depth=args.depth,
        max_queries=args.max_queries,
        queries_per_shard=args.queries_per_shard,
        seed=args.seed,
        dense_model=args.dense_model,
        device=args.device,
        show_progress=sys.stderr.isatty(),
    )
    from ..training.io import count_rows

    print(f"candidates: {count_rows(out)} pairs in {out}")
    return 0


def run_score_teacher(args: argparse.Namespace) -> int:
    from ..training.scoring import score_teacher

    out = score_teacher(
        args.candidates,
        args.teacher,
        args.output,
        backend=args.backend,
        workers=args.workers,
        shard_size=args.shard_size,
        batch_pairs=args.batch_pairs,
        device=args.device,
        dtype=args.dtype,
        max_length=args.max_length,
        batch_tokens=args.batch_tokens,
        ray_address=args.ray_address,
    )
    from ..training.io import count_rows

    print(f"scored: {count_rows(out)} pairs in {out}")
    return 0


def run_select(args: argparse.Namespace) -> int:
    from ..training.selection import select_training_pairs

    try:
        low, high = (float(x) for x in args.medium_band.split(","))
    except ValueError:
        raise ValueError(
            f"--medium-band must be two fractions like 0.25,0.75, got {args.medium_band!r}"
        ) from None
    out = select_training_pairs(
        args.scored,
        args.output,
        keep=args.keep,
        per_query=args.per_query,
        top_hard=args.top_hard,
        medium_band=(low, high),
        heldout_queries=args.heldout_queries,
        seed=args.seed,
    )
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    print(f"selected: {manifest['rows']} pairs in {out}")
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from ..training.distill import DistillConfig, distill

    config = DistillConfig(
        train=args.train,
        output_dir=args.output,
        student=args.student,
        init_encoder=args.init_encoder,
        keep_layers=args.keep_layers,
        tokenizer=args.tokenizer,
        eval_dataset=args.eval_dataset,
        eval_split=args.eval_split,
        eval_queries=args.eval_queries,
        eval_max_corpus=args.eval_max_corpus,
        heldout=args.heldout,
        loss=args.loss,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        epochs=args.epochs,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_length=args.max_length,
        micro_batch_tokens=args.micro_batch_tokens,
        eval_every=args.eval_every,
        keep_best=args.keep_best,
        eval_at_start=not args.no_eval_at_start,
        precision=args.precision,
        device=args.device,
        seed=args.seed,
    )
    result = distill(config)
    if result.get("best_checkpoint"):
        evals = [e for e in result["evals"] if e["step"] == result["best_step"]]
        print(f"student: {args.output} (best step {result['best_step']}: {evals[0] if evals else {}})")
    return 0
