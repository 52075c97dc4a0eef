from __future__ import annotations

import re

import numpy as np
import pytest

from ettin_rerank.evaluation import EvaluationSettings, evaluate, rerank_run
from ettin_rerank.retrieval import load_beir


class OverlapScorer:
    """A deterministic stand-in reranker: score = number of shared words (so ties happen)."""

    name = "overlap"

    def __init__(self):
        self.calls = []

    def score_pairs(self, pairs):
        self.calls.append(len(pairs))
        words = lambda s: set(re.findall(r"\w+", s.lower()))  # noqa: E731
        return np.array([len(words(q) & words(d)) for q, d in pairs], dtype=np.float32)


def test_rerank_orders_by_score_and_ties_keep_first_stage_order():
    queries = {"q": "red apple"}
    corpus = {"a": "green pear", "b": "red apple", "c": "red car", "d": "apple pie", "e": "red apple"}
    run = {"q": {"a": 5.0, "c": 4.0, "d": 3.0, "e": 2.0, "b": 1.0}}
    reranked = rerank_run(OverlapScorer(), queries, corpus, run, top_k=10, show_progress=False)
    # e and b both score 2: e came first in the first stage; c and d both 1: c first.
    assert list(reranked["q"]) == ["e", "b", "c", "d", "a"]
    assert reranked["q"]["e"] == 2.0


def test_rerank_top_k_and_no_injection():
    queries = {"q": "red apple"}
    corpus = {"a": "green pear", "b": "red apple", "c": "red car"}
    run = {"q": {"a": 3.0, "c": 2.0, "b": 1.0}}
    reranked = rerank_run(OverlapScorer(), queries, corpus, run, top_k=2, show_progress=False)
    assert list(reranked["q"]) == ["c", "a"]  # b (the best match) was below top_k: not added


def test_rerank_groups_queries_into_calls():
    corpus = {str(i): f"word{i}" for i in range(10)}
    queries = {f"q{i}": "word1" for i in range(5)}
    run = {q: {d: 1.0 for d in corpus} for q in queries}
    scorer = OverlapScorer()
    reranked = rerank_run(scorer, queries, corpus, run, top_k=4, pairs_per_call=8, show_progress=False)
    assert scorer.calls == [8, 8, 4]
    assert all(next(iter(r)) == "1" for r in reranked.values())


def test_rerank_rejects_bad_scorers_and_inputs():
    class Short:
        name = "short"

        def score_pairs(self, pairs):
            return np.zeros(len(pairs) - 1)

    class NaN:
        name = "nan"

        def score_pairs(self, pairs):
            return np.full(len(pairs), np.nan)

    queries, corpus, run = {"q": "x"}, {"a": "x", "b": "y"}, {"q": {"a": 1.0, "b": 0.5}}
    with pytest.raises(RuntimeError, match="returned 1 scores for 2 pairs"):
        rerank_run(Short(), queries, corpus, run, show_progress=False)
    with pytest.raises(RuntimeError, match="non-finite"):
        rerank_run(NaN(), queries, corpus, run, show_progress=False)
    with pytest.raises(ValueError, match="not in the corpus"):
        rerank_run(OverlapScorer(), queries, {"a": "x"}, run, show_progress=False)
    with pytest.raises(ValueError, match="have no text"):
        rerank_run(OverlapScorer(), {}, corpus, run, show_progress=False)


def test_evaluate_first_stage_only_and_reranked(tiny_beir):
    dataset = load_beir(tiny_beir)
    first_only = evaluate(dataset, show_progress=False)
    assert first_only.reranked is None
    assert set(first_only.first_stage) == {"ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100"}
    assert (
        first_only.counts["queries_evaluated"] == 3 and first_only.counts["queries_skipped_no_relevant"] == 1
    )
    assert first_only.settings["bm25"]["stemmer"] == "porter"

    report = evaluate(tiny_beir, OverlapScorer(), EvaluationSettings(top_k=5), show_progress=False)
    assert report.reranked is not None
    assert report.settings["reranker"] == "overlap" and report.settings["top_k"] == 5
    assert report.settings["reranker_compute"] is None  # a scorer that is not a model has no mode
    assert report.first_stage == first_only.first_stage
    assert {"index_s", "retrieve_s", "rerank_s"} <= set(report.timings)
    data = report.to_dict()
    assert data["reranked"]["ndcg@10"] == report.reranked["ndcg@10"]


def test_evaluate_with_a_given_run(tiny_beir):
    dataset = load_beir(tiny_beir)
    run = {"q1": {"d2": 2.0, "d1": 1.0}, "q2": {"d3": 1.0}, "q3": {}}
    report = evaluate(dataset, reranker=OverlapScorer(), run=run, show_progress=False)
    assert report.first_stage["mrr@10"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert report.reranked["mrr@10"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)


def test_evaluate_rejects_a_split_without_relevant_judgements(tiny_beir):
    (tiny_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq4\td6\t0\n")
    with pytest.raises(ValueError, match="no query of split 'test' has a relevant judgement"):
        evaluate(tiny_beir, show_progress=False)


def test_end_to_end_random_tiny_reranker_on_nano_scifact(scifact_dir, modernbert_tokenizer_dir, tmp_path):
    """The real engine (random weights) through the whole pipeline on a small SciFact subset."""
    tokenizer_dir = modernbert_tokenizer_dir
    pytest.importorskip("ettin_rerank.family", reason="the engine (ettin_rerank.family) is not available")
    from ettin_rerank import Reranker
    from ettin_rerank.evaluation import write_report
    from ettin_rerank.family import create_random_reranker
    from ettin_rerank.retrieval import build_nano_subset

    model_dir = create_random_reranker("tiny", tokenizer_dir, tmp_path / "tiny", seed=0)
    reranker = Reranker.from_pretrained(model_dir, max_length=256)
    nano = build_nano_subset(
        load_beir(scifact_dir, "test"), n_queries=4, max_corpus=80, seed=0, show_progress=False
    )
    report = evaluate(nano, reranker, EvaluationSettings(top_k=10), show_progress=False)
    assert report.counts["documents"] == 80 and report.counts["queries_evaluated"] == 4
    for metric, value in report.reranked.items():
        assert 0.0 <= value <= 1.0, metric
    # Reranking permutes the top-10 only: recall@10 cannot change, recall@100 is capped by it.
    assert report.reranked["recall@10"] == pytest.approx(report.first_stage["recall@10"])
    assert report.reranked["recall@100"] == pytest.approx(report.first_stage["recall@10"])
    paths = write_report(report, tmp_path / "out" / "results.json")
    assert all(p.is_file() for p in paths.values())
