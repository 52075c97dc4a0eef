"""Evaluation with TREC runs and qrels, BEIR's identical-id rule, and saved runs."""

from __future__ import annotations

import json
import logging
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from ettin_rerank.evaluation import EvaluationSettings, evaluate, evaluate_run
from ettin_rerank.evaluation.evaluator import drop_identical_ids
from ettin_rerank.retrieval import load_beir
from ettin_rerank.retrieval.trec import read_qrels, read_run, write_run


class OverlapScorer:
    """A deterministic stand-in reranker: score = number of shared words."""

    name = "overlap"

    def score_pairs(self, pairs):
        words = lambda s: set(re.findall(r"\w+", s.lower()))  # noqa: E731
        return np.array([len(words(q) & words(d)) for q, d in pairs], dtype=np.float32)


# ArguAna in miniature: every query is an argument from the corpus (same id, same text), and
# the relevant document is its counter-argument.
ARGUMENTS = {
    "a1": "Nuclear power is safe because modern reactors have passive cooling systems.",
    "c1": "Passive cooling systems fail too: nuclear power is not safe, reactors still melt down.",
    "a2": "School uniforms reduce bullying because pupils cannot judge each other by clothes.",
    "c2": "Bullying does not stop with uniforms; pupils find other things to judge each other by.",
    "a3": "Cities should ban cars from their centres to cut air pollution and noise.",
    "c3": "A ban on cars hurts shops in city centres, and pollution moves to the ring roads.",
    "x1": "Bread is baked from flour, water and yeast.",
    "x2": "Chess is a strategy board game played between two players.",
}


def write_arguana_like(directory: Path) -> Path:
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in ARGUMENTS.items())
    )
    queries = {q: ARGUMENTS[q] for q in ("a1", "a2", "a3")}
    (directory / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (directory / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"a{i}\tc{i}\t1\n" for i in (1, 2, 3))
    )
    return directory


def test_identical_ids_are_dropped_by_default_and_kept_on_request(tmp_path):
    dataset = write_arguana_like(tmp_path / "arguana")
    dropped = evaluate(
        dataset, OverlapScorer(), EvaluationSettings(save_run=tmp_path / "on.trec"), show_progress=False
    )
    kept = evaluate(
        dataset,
        OverlapScorer(),
        EvaluationSettings(keep_identical_ids=True, save_run=tmp_path / "off.trec"),
        show_progress=False,
    )

    # Every query finds itself first; the rule takes it out of both runs before anything is scored.
    first_kept = read_run(tmp_path / "off.first-stage.trec")
    assert all(next(iter(first_kept[q])) == q for q in ("a1", "a2", "a3"))
    for path in ("on.trec", "on.first-stage.trec"):
        run = read_run(tmp_path / path)
        assert not any(q in docs for q, docs in run.items()), path
        assert [next(iter(run[q])) for q in ("a1", "a2", "a3")] == ["c1", "c2", "c3"]
    assert dropped.first_stage["ndcg@10"] == pytest.approx(1.0)
    assert dropped.reranked["ndcg@10"] == pytest.approx(1.0)
    assert kept.first_stage["ndcg@10"] == pytest.approx(1 / np.log2(3))  # the counter-argument at rank 2
    assert kept.reranked["mrr@10"] == pytest.approx(0.5)
    assert dropped.counts["identical_ids_dropped"] == 3 and kept.counts["identical_ids_dropped"] == 0
    assert dropped.counts["identical_ids_judged_relevant"] == 0
    assert dropped.settings["keep_identical_ids"] is False and kept.settings["keep_identical_ids"] is True


def test_drop_identical_ids_drops_the_query_itself_not_a_coincidence_of_numbering():
    # Cranfield numbers its queries and documents separately: query "225"'s answer is document "225".
    run = {"225": {"225": 9.0, "7": 3.0}, "1": {"4": 2.0}}
    qrels = {"225": {"225": 2}, "1": {"4": 1}}
    queries = {"225": "what is the flow past a slender body", "1": "boundary layers"}
    corpus = {"225": "an experimental study of slender bodies", "7": "other", "4": "boundary layer notes"}
    kept, dropped, judged = drop_identical_ids(run, queries, corpus, qrels)
    assert kept == run and (dropped, judged) == (0, 0)
    # Quora-style: the same id and the same text (whitespace and case folded) is the query itself.
    corpus["225"] = "What is the  FLOW past a slender body"
    kept, dropped, judged = drop_identical_ids(run, queries, corpus, qrels)
    assert kept == {"225": {"7": 3.0}, "1": {"4": 2.0}} and (dropped, judged) == (1, 1)
    assert run["225"] == {"225": 9.0, "7": 3.0}  # the caller's run is left as it was


def test_evaluate_warns_and_counts_a_dropped_judged_answer(tmp_path, caplog):
    dataset = write_arguana_like(tmp_path / "arguana")
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na1\ta1\t1\na1\tc1\t1\n")
    with caplog.at_level(logging.WARNING):
        report = evaluate(dataset, None, show_progress=False)
    assert report.counts["identical_ids_judged_relevant"] == 1
    assert "pass --keep-identical-ids" in caplog.text


def test_save_run_writes_what_was_scored(tiny_beir, tmp_path):
    out = tmp_path / "runs" / "reranked.trec"
    report = evaluate(
        tiny_beir, OverlapScorer(), EvaluationSettings(top_k=3, save_run=out), show_progress=False
    )
    first_copy = tmp_path / "runs" / "reranked.first-stage.trec"
    assert report.runs == {"reranked": str(out), "first_stage": str(first_copy)}
    qrels = load_beir(tiny_beir).qrels
    reranked, first = read_run(out), read_run(first_copy)
    assert evaluate_run(qrels, reranked) == report.reranked
    assert evaluate_run(qrels, first) == report.first_stage
    assert all(len(docs) <= 3 for docs in reranked.values())
    assert out.read_text().splitlines()[0].endswith(" ettin-rerank")
    assert first_copy.read_text().splitlines()[0].endswith(" bm25")

    # Without a reranker, OUT holds the first stage's run, the ranking that was scored.
    alone = evaluate(
        tiny_beir, None, EvaluationSettings(save_run=tmp_path / "bm25.trec"), show_progress=False
    )
    assert alone.runs == {"first_stage": str(tmp_path / "bm25.trec")}
    assert read_run(tmp_path / "bm25.trec") == first


def test_a_saved_run_is_a_first_stage(tiny_beir, tmp_path):
    bm25 = evaluate(tiny_beir, None, EvaluationSettings(save_run=tmp_path / "bm25.trec"), show_progress=False)
    spec = f"run:{tmp_path / 'bm25.trec'}"
    from_file = evaluate(
        tiny_beir,
        OverlapScorer(),
        EvaluationSettings(first_stage=spec, save_run=tmp_path / "re.trec"),
        show_progress=False,
    )
    assert from_file.first_stage == bm25.first_stage
    assert from_file.settings["first_stage"] == spec
    assert from_file.settings["run_file"] == str(tmp_path / "bm25.trec")
    assert from_file.runs == {"reranked": str(tmp_path / "re.trec")}  # no copy of the input run
    assert from_file.reranked == evaluate(tiny_beir, OverlapScorer(), show_progress=False).reranked


def test_trec_qrels_replace_the_splits_and_grades_count(tiny_beir, tmp_path):
    run_file = write_run({"q1": {"d2": 3.0, "d1": 2.0}, "q2": {"d3": 1.0, "d8": 0.5}}, tmp_path / "r.trec")
    qrels_file = tmp_path / "graded.qrels"
    qrels_file.write_text("q1 0 d1 1\nq2 0 d3 1\nq2 0 d8 3\nq2 0 d99 2\n")  # d99: judged, not in the corpus
    report = evaluate(
        tiny_beir,
        None,
        EvaluationSettings(first_stage=f"run:{run_file}", qrels=qrels_file, metrics=["ndcg@10"]),
        show_progress=False,
    )
    q1 = (1 / np.log2(3)) / 1.0
    q2 = (1 + 3 / np.log2(3)) / (3 + 2 / np.log2(3) + 1 / 2)  # ideal: grades 3, 2, 1
    assert report.first_stage["ndcg@10"] == pytest.approx((q1 + q2) / 2)
    assert report.dataset == {"name": "tiny", "split": "graded"}
    assert report.settings["qrels"] == str(qrels_file)
    assert report.counts["qrels_outside_corpus_kept"] == 1


def test_evaluate_refuses_what_cannot_combine(tiny_beir, tmp_path):
    run_file = write_run({"q1": {"d1": 1.0}}, tmp_path / "r.trec")
    with pytest.raises(ValueError, match="--nano evaluates a subset of the corpus"):
        evaluate(
            tiny_beir, None, EvaluationSettings(first_stage=f"run:{run_file}", nano=2), show_progress=False
        )
    with pytest.raises(ValueError, match="this dataset is already loaded"):
        evaluate(
            load_beir(tiny_beir), None, EvaluationSettings(qrels=tmp_path / "q.txt"), show_progress=False
        )
    with pytest.raises(ValueError, match="needs FILE"):
        evaluate(tiny_beir, None, EvaluationSettings(first_stage="run"), show_progress=False)


def test_dl19_official_bm25_run_reproduces_the_published_ndcg(dl19_dir):
    dl19 = dl19_dir
    run_file, qrels_file = dl19 / "bm25_top100.trec", dl19 / "qrels" / "test_full.trec"
    report = evaluate(
        dl19,
        None,
        EvaluationSettings(first_stage=f"run:{run_file}", qrels=qrels_file, metrics=["ndcg@10"]),
        show_progress=False,
    )
    assert report.counts["queries_evaluated"] == 43
    assert round(report.first_stage["ndcg@10"], 4) == 0.5058  # Anserini's and RankGPT's BM25 figure

    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval-terrier is a dev dependency")
    evaluator = pytrec_eval.RelevanceEvaluator(read_qrels(qrels_file), {"ndcg_cut.10"})
    per_query = evaluator.evaluate(read_run(run_file))
    assert len(per_query) == 43
    reference = statistics.mean(values["ndcg_cut_10"] for values in per_query.values())
    assert report.first_stage["ndcg@10"] == pytest.approx(reference, abs=1e-12)

    # The dataset's own qrels/test.tsv keeps only judgements of documents in this rerank set: the
    # ideal ranking shrinks, the figure rises, and it is no longer the published one.
    pooled = evaluate(
        dl19,
        None,
        EvaluationSettings(first_stage=f"run:{run_file}", metrics=["ndcg@10"]),
        show_progress=False,
    )
    assert pooled.first_stage["ndcg@10"] > 0.52
