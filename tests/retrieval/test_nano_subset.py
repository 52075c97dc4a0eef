from __future__ import annotations

import json

import pytest

from ettin_rerank.retrieval import build_nano_subset, load_beir


@pytest.fixture(scope="module")
def scifact(scifact_dir):
    return load_beir(scifact_dir, "test")


def test_nano_subset_is_deterministic_and_capped(scifact, tmp_path):
    subset = build_nano_subset(
        scifact, n_queries=12, max_corpus=400, seed=3, output_dir=tmp_path / "nano", show_progress=False
    )
    again = build_nano_subset(scifact, n_queries=12, max_corpus=400, seed=3, show_progress=False)
    other = build_nano_subset(scifact, n_queries=12, max_corpus=400, seed=4, show_progress=False)
    assert len(subset.queries) == 12
    assert len(subset.corpus) == 400
    assert list(subset.corpus) == list(again.corpus) and list(subset.queries) == list(again.queries)
    assert list(subset.queries) != list(other.queries)
    for query_id in subset.queries:
        assert set(subset.qrels[query_id]) <= set(subset.corpus)  # every judged document kept
        assert any(s > 0 for s in subset.qrels[query_id].values())
    # Written back in BEIR format, loadable, with a record of how it was built.
    loaded = load_beir(tmp_path / "nano", "test")
    assert loaded.qrels == subset.qrels and list(loaded.corpus) == list(subset.corpus)
    info = json.loads((tmp_path / "nano" / "nano.json").read_text())
    assert info["seed"] == 3 and info["corpus_size"] == 400


def test_distractors_come_from_the_first_stage_rank_by_rank(tiny_beir):
    dataset = load_beir(tiny_beir)
    run = {"q1": {"d7": 3.0, "d6": 2.0}, "q2": {"d5": 3.0, "d2": 1.0}, "q3": {"d2": 5.0}}
    subset = build_nano_subset(dataset, n_queries=3, max_corpus=6, seed=0, distractor_run=run)
    # judged: d1, d3, d8, d4; rank 1 distractors d7, d5 fill the cap of 6 (d2 at rank 1 of q3 is past it).
    assert set(subset.corpus) == {"d1", "d3", "d8", "d4", "d7", "d5"}
    assert list(subset.corpus) == ["d1", "d3", "d4", "d5", "d7", "d8"]  # parent corpus order
    assert "q4" not in subset.queries  # no relevant document: never sampled


def test_bad_arguments(tiny_beir):
    dataset = load_beir(tiny_beir)
    with pytest.raises(ValueError, match="n_queries"):
        build_nano_subset(dataset, n_queries=0)
    with pytest.raises(ValueError, match="max_corpus"):
        build_nano_subset(dataset, max_corpus=0)
