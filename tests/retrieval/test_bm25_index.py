from __future__ import annotations

import json

import pytest

from ettin_rerank.evaluation import evaluate_run
from ettin_rerank.retrieval import BM25Config, BM25Index, IndexFormatError, load_beir


def test_finds_the_matching_document(tiny_beir):
    dataset = load_beir(tiny_beir)
    index = BM25Index.build(dataset.corpus, show_progress=False)
    run = index.search(dataset.queries, k=3, show_progress=False)
    assert next(iter(run["q1"])) == "d1"
    assert next(iter(run["q2"])) == "d3"
    assert next(iter(run["q3"])) == "d4"
    for ranked in run.values():
        scores = list(ranked.values())
        assert scores == sorted(scores, reverse=True)
        assert len(ranked) <= 3


def test_stemming_matches_inflections():
    corpus = {"a": "the runner was running fast", "b": "a quiet evening at home"}
    stemmed = BM25Index.build(corpus, show_progress=False).search(["runs"], k=2, show_progress=False)
    assert list(stemmed["0"]) == ["a"]
    plain = BM25Index.build(corpus, BM25Config(stemmer=None), show_progress=False).search(
        ["runs"], k=2, show_progress=False
    )
    assert plain["0"] == {}


def test_stopword_only_and_unknown_queries_return_nothing(tiny_beir):
    index = BM25Index.build(load_beir(tiny_beir).corpus, show_progress=False)
    run = index.search({"a": "the and of", "b": "zyzzyva", "c": "cats"}, k=5, show_progress=False)
    assert run["a"] == {} and run["b"] == {}
    assert list(run["c"])[0] == "d1"
    assert list(run) == ["a", "b", "c"]


def test_ties_keep_index_order():
    corpus = {"z": "apple pie", "y": "apple pie", "x": "apple pie", "w": "banana"}
    run = BM25Index.build(corpus, show_progress=False).search(["apple"], k=10, show_progress=False)
    assert list(run["0"]) == ["z", "y", "x"]


def test_save_load_identical(tiny_beir, tmp_path):
    dataset = load_beir(tiny_beir)
    config = BM25Config(stemmer="english", k1=1.2, b=0.75)
    index = BM25Index.build(dataset.corpus, config, show_progress=False)
    index.save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx")
    assert loaded.config == config
    assert loaded.doc_ids == index.doc_ids
    assert loaded.search(dataset.queries, k=5, show_progress=False) == index.search(
        dataset.queries, k=5, show_progress=False
    )


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index.build({}, show_progress=False)
    with pytest.raises(ValueError, match="unknown stemmer"):
        BM25Index.build({"a": "x y"}, BM25Config(stemmer="klingon"), show_progress=False)
    with pytest.raises(FileNotFoundError, match="not a BM25 index"):
        BM25Index.load(tmp_path)
    index = BM25Index.build({"a": "word"}, show_progress=False)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search(["word"], k=0)


@pytest.mark.slow
def test_scifact_bm25_matches_beir(scifact_dir):
    dataset = load_beir(scifact_dir, "test")
    run = BM25Index.build(dataset.corpus, show_progress=False).search(
        dataset.queries, k=100, show_progress=False
    )
    ndcg = evaluate_run(dataset.qrels, run)["ndcg@10"]
    assert abs(ndcg - 0.665) <= 0.01, ndcg


def test_index_of_a_newer_format_is_refused(tmp_path):
    directory = BM25Index.build({"a": "word"}, show_progress=False).save(tmp_path / "idx")
    meta_path = directory / "ettin_bm25.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps({**meta, "format_version": 2}), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="BM25 index format 2 is newer .*upgrade ettin-rerank"):
        BM25Index.load(directory)
