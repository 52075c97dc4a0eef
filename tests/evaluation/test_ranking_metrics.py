"""Our metrics against pytrec_eval (trec_eval) on the same runs, to 1e-6."""

from __future__ import annotations

import logging
import math
import random

import pytest

from ettin_rerank.evaluation import evaluate_per_query, evaluate_run, ranked_ids
from ettin_rerank.evaluation.metrics import parse_metric

pytrec_eval = pytest.importorskip("pytrec_eval", reason="metric parity needs pytrec_eval-terrier")

TREC_MEASURES = {"ndcg_cut.10", "map_cut.100", "recall.10,100"}
OURS_TO_TREC = {
    "ndcg@10": "ndcg_cut_10",
    "map@100": "map_cut_100",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
}


def trec_means(qrels, run) -> dict[str, float]:
    """pytrec_eval means over the judged queries with a relevant document, in our metric names."""
    per_query = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)
    top10 = {q: {d: docs[d] for d in ranked_ids(docs)[:10]} for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    keep = [q for q, judged in qrels.items() if any(s > 0 for s in judged.values())]
    means = {ours: sum(per_query[q][trec] for q in keep) / len(keep) for ours, trec in OURS_TO_TREC.items()}
    means["mrr@10"] = sum(rr[q]["recip_rank"] for q in keep) / len(keep)
    return means


def random_case(seed: int, n_queries: int = 40, n_docs: int = 400, depth: int = 150):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        query_id = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 12))
        qrels[query_id] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if not any(qrels[query_id].values()):
            qrels[query_id][judged[0]] = 1
        retrieved = rng.sample(docs, depth)
        # distinct scores (no ties), so trec_eval's tie rule cannot matter
        scores = rng.sample(range(10 * depth), depth)
        run[query_id] = {d: float(s) / 7.0 for d, s in zip(retrieved, scores, strict=True)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_pytrec_eval(seed):
    qrels, run = random_case(seed)
    ours = evaluate_run(qrels, run)
    reference = trec_means(qrels, run)
    for metric, value in reference.items():
        assert ours[metric] == pytest.approx(value, abs=1e-6), metric


def test_parity_on_real_bm25_run(scifact_dir):
    from ettin_rerank.retrieval import BM25Index, load_beir

    dataset = load_beir(scifact_dir, "test")
    run = BM25Index.build(dataset.corpus, show_progress=False).search(
        dataset.queries, k=100, show_progress=False
    )
    ours = evaluate_run(dataset.qrels, run)
    # trec_eval breaks score ties by document id; give it rank-derived scores so it sees our order.
    ranked = {q: {d: float(len(docs) - i) for i, d in enumerate(ranked_ids(docs))} for q, docs in run.items()}
    reference = trec_means(dataset.qrels, ranked)
    for metric, value in reference.items():
        assert ours[metric] == pytest.approx(value, abs=1e-6), metric


def test_ties_keep_run_order():
    qrels = {"q": {"b": 1}}
    # a and b tie; b was inserted second, so it ranks 2nd (first-stage order), whatever the ids.
    assert evaluate_run(qrels, {"q": {"a": 1.0, "b": 1.0}}, ["mrr@10"])["mrr@10"] == 0.5
    assert evaluate_run(qrels, {"q": {"b": 1.0, "a": 1.0}}, ["mrr@10"])["mrr@10"] == 1.0


def test_hand_computed_values():
    qrels = {"q": {"a": 2, "b": 1, "c": 1, "x": 0}}
    run = {"q": {"x": 4.0, "a": 3.0, "z": 2.0, "b": 1.0}}
    result = evaluate_run(qrels, run, ["ndcg@10", "mrr@10", "map@100", "recall@10", "precision@2"])
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert result["ndcg@10"] == pytest.approx(dcg / idcg)
    assert result["mrr@10"] == pytest.approx(1 / 2)
    assert result["map@100"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert result["recall@10"] == pytest.approx(2 / 3)
    assert result["precision@2"] == pytest.approx(1 / 2)


def test_cutoffs_apply():
    qrels = {"q": {"rel": 1}}
    run = {"q": {f"n{i}": 100.0 - i for i in range(10)} | {"rel": 50.0}}
    result = evaluate_run(qrels, run)
    assert result["ndcg@10"] == 0.0 and result["mrr@10"] == 0.0 and result["recall@10"] == 0.0
    assert result["recall@100"] == 1.0 and result["map@100"] == pytest.approx(1 / 11)


def test_queries_without_relevant_are_skipped_and_missing_runs_score_zero(caplog):
    qrels = {"good": {"a": 1}, "none": {"b": 0}, "absent": {"c": 1}}
    run = {"good": {"a": 1.0}, "none": {"b": 1.0}}
    with caplog.at_level(logging.WARNING):
        result = evaluate_run(qrels, run, ["ndcg@10"])
    assert result["ndcg@10"] == pytest.approx(0.5)  # (1 + 0) / 2: "none" is left out, "absent" scores 0
    assert set(evaluate_per_query(qrels, run)) == {"good", "absent"}
    assert "no relevant judgement" in caplog.text and "no retrieved documents" in caplog.text
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_run({"none": {"b": 0}}, run)


def test_bad_metric_name():
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("ndcg")
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("bleu@4")
