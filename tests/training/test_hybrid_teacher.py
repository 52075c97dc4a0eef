"""The first-stage ensemble teacher: 10 * (bi-encoder cosine + 0.02 * BM25) per pair."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ettin_rerank.scoring import PairScorer
from ettin_rerank.training.teacher import HybridTeacher, load_teacher

DOCS = {
    "d1": ("Ettin", "Ettin is a family of ModernBERT cross-encoder rerankers."),
    "d2": ("Cooking", "Slow-cooked beans need salt, water and patience."),
    "d3": ("", "Rerankers reorder the documents a first stage retrieved."),
    "d4": ("Giants", "In Norse myth the jotnar are giants; an ettin has two heads."),
}


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("ETTIN_RERANK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    root.mkdir()
    lines = [json.dumps({"_id": i, "title": t, "text": x}) for i, (t, x) in DOCS.items()]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_scores_are_the_documented_combination(tiny_dataset):
    from ettin_rerank.retrieval.beir import load_corpus
    from ettin_rerank.retrieval.bm25 import BM25Index
    from ettin_rerank.retrieval.dense import DenseIndex

    teacher = load_teacher(f"hybrid:{tiny_dataset}")
    assert isinstance(teacher, HybridTeacher) and isinstance(teacher, PairScorer)
    corpus = load_corpus(tiny_dataset / "corpus.jsonl")
    texts = [doc.text_for_scoring for doc in corpus.values()]
    queries = ["what is an ettin reranker", "what is an ettin reranker", "how to cook beans", "giants"]
    documents = [texts[0], texts[2], texts[1], texts[3]]
    scores = teacher.score_pairs(list(zip(queries, documents, strict=True)))

    bm25 = BM25Index.build(corpus, show_progress=False)
    dense = DenseIndex.build(corpus, show_progress=False)
    expected = []
    for query, document in zip(queries, documents, strict=True):
        row = texts.index(document)
        run = bm25.search({"q": query}, k=len(texts), show_progress=False)["q"]
        lexical = run.get(list(corpus)[row], 0.0)
        cosine = float(dense.embeddings[row] @ dense.encode_queries([query])[0])
        expected.append(10 * (cosine + 0.02 * lexical))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert scores[0] > scores[1] and scores[2] > 0  # the matching document wins; cooking matches cooking


def test_unknown_document_is_refused(tiny_dataset):
    teacher = HybridTeacher(tiny_dataset)
    with pytest.raises(ValueError, match="not in the teacher's corpus"):
        teacher.score_pairs([("q", "a document that is not in the corpus")])
