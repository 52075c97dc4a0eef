"""`ettin_rerank.integrations.langchain.EttinRerank` against the real langchain-core."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed")

from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402

from ettin_rerank import Reranker  # noqa: E402
from ettin_rerank.integrations.langchain import EttinRerank  # noqa: E402
from ettin_rerank.models import ENV_VAR, bundled_model_dir  # noqa: E402

from .conftest import (  # noqa: E402
    ANSWER,
    DOCUMENTS,
    FILLER,
    LONG_ANSWER,
    LONG_DOCUMENTS,
    QUERY,
    TEST_CALIBRATION,
)


def as_documents(texts: list[str]) -> list[Document]:
    return [
        Document(page_content=text, metadata={"source": f"doc-{i}"}, id=f"id-{i}")
        for i, text in enumerate(texts)
    ]


def test_the_bundled_model_is_the_default_and_ranks_the_answer_first(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    compressor = EttinRerank()
    assert isinstance(compressor, BaseDocumentCompressor)
    assert compressor.model == str(bundled_model_dir()) and compressor.top_n == 3
    assert compressor.activation == compressor.reranker.probability_activation
    best = compressor.compress_documents(as_documents(DOCUMENTS), QUERY)
    assert len(best) == 3
    assert best[0].page_content == DOCUMENTS[ANSWER]
    assert best[0].metadata["source"] == f"doc-{ANSWER}" and best[0].id == f"id-{ANSWER}"


def test_scores_in_metadata_are_the_rerankers_and_inputs_are_untouched(bundled_reranker):
    compressor = EttinRerank(reranker=bundled_reranker, top_n=None)
    documents = as_documents(DOCUMENTS)
    best = compressor.compress_documents(documents, QUERY)
    expected = bundled_reranker.rank(
        QUERY, DOCUMENTS, activation=compressor.activation, long_documents="chunk"
    )
    assert [d.metadata["source"] for d in best] == [f"doc-{r['index']}" for r in expected]
    assert [d.metadata["relevance_score"] for d in best] == [r["score"] for r in expected]
    assert all(isinstance(d.metadata["relevance_score"], float) for d in best)
    assert all(d.metadata["n_chunks"] == 1 for d in best)  # every one fits the model whole
    scores = [d.metadata["relevance_score"] for d in best]
    assert scores == sorted(scores, reverse=True)
    assert all("relevance_score" not in d.metadata for d in documents)  # copies were returned


@pytest.mark.parametrize("top_n", [1, 2, 4, 10, None])
def test_top_n(bundled_reranker, top_n):
    best = EttinRerank(reranker=bundled_reranker, top_n=top_n).compress_documents(
        as_documents(DOCUMENTS), QUERY
    )
    assert len(best) == min(top_n or len(DOCUMENTS), len(DOCUMENTS))
    assert best[0].page_content == DOCUMENTS[ANSWER]


def test_a_long_document_is_chunked_and_its_late_answer_found(bundled_reranker):
    assert bundled_reranker.tokenizer.count_tokens([FILLER])[0] > bundled_reranker.max_length
    documents = as_documents(LONG_DOCUMENTS)
    best = EttinRerank(reranker=bundled_reranker, top_n=None).compress_documents(documents, QUERY)
    assert best[0].metadata["source"] == f"doc-{LONG_ANSWER}"
    assert best[0].metadata["n_chunks"] > 1
    # the control: cut to the model's max length, the answer is not seen and the document loses
    truncated = EttinRerank(reranker=bundled_reranker, top_n=None, long_documents="truncate")
    cut = truncated.compress_documents(documents, QUERY)
    assert cut[0].metadata["source"] != f"doc-{LONG_ANSWER}"
    assert "n_chunks" not in cut[0].metadata


def test_an_empty_list_gives_an_empty_list(bundled_reranker):
    assert EttinRerank(reranker=bundled_reranker).compress_documents([], QUERY) == []


def test_async_compression_matches(bundled_reranker):
    compressor = EttinRerank(reranker=bundled_reranker, top_n=2)
    documents = as_documents(DOCUMENTS)
    assert asyncio.run(compressor.acompress_documents(documents, QUERY)) == compressor.compress_documents(
        documents, QUERY
    )


def test_activation_defaults_to_the_calibration_when_the_model_has_one(
    tiny_reranker_dir, calibrated_tiny_dir
):
    plain = EttinRerank(model=str(tiny_reranker_dir), top_n=None)
    assert plain.activation == "sigmoid"
    calibrated = EttinRerank(model=str(calibrated_tiny_dir), top_n=None)
    assert calibrated.activation == "calibrated"
    raw = EttinRerank(model=str(calibrated_tiny_dir), top_n=None, activation="identity")
    documents = as_documents(DOCUMENTS)
    logits = {
        d.metadata["source"]: d.metadata["relevance_score"] for d in raw.compress_documents(documents, QUERY)
    }
    for sigmoid, probability in zip(
        plain.compress_documents(documents, QUERY),
        calibrated.compress_documents(documents, QUERY),
        strict=True,
    ):
        assert sigmoid.metadata["source"] == probability.metadata["source"]  # a monotone map: same order
        logit = np.float32(logits[probability.metadata["source"]])
        expected = TEST_CALIBRATION.probabilities(np.array([logit]))[0]
        assert probability.metadata["relevance_score"] == pytest.approx(float(expected), abs=1e-6)
        assert sigmoid.metadata["relevance_score"] == pytest.approx(1 / (1 + np.exp(-float(logit))), abs=1e-6)


def test_calibrated_on_a_model_without_calibration_says_how_to_get_one(tiny_reranker_dir):
    with pytest.raises(ValueError, match="ettin-rerank calibrate"):
        EttinRerank(model=str(tiny_reranker_dir), activation="calibrated")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_n": 0}, ValueError, "top_n must be a positive integer"),
        ({"top_n": -2}, ValueError, "top_n must be a positive integer"),
        ({"activation": "softmax"}, ValueError, "activation must be"),
        ({"long_documents": "split"}, ValueError, "long_documents must be one of"),
        ({"top_k": 3}, ValueError, "top_k"),  # a misspelt option is refused, not ignored
    ],
)
def test_bad_options_fail_at_construction(bundled_reranker, options, error, message):
    with pytest.raises(error, match=message):
        EttinRerank(reranker=bundled_reranker, **options)


def test_model_and_reranker_are_checked(bundled_reranker, tiny_reranker_dir):
    with pytest.raises(ValueError, match="not both"):
        EttinRerank(model=str(tiny_reranker_dir), reranker=bundled_reranker)
    with pytest.raises(TypeError, match="reranker must be an ettin_rerank.Reranker"):
        EttinRerank(reranker="cross-encoder/ettin-reranker-17m-v1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EttinRerank(model="./no-such-model-dir")


def test_wrong_inputs_give_clear_errors(bundled_reranker):
    compressor = EttinRerank(reranker=bundled_reranker)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a langchain_core Document, got str"):
        compressor.compress_documents([Document(page_content="a"), "b"], QUERY)
    with pytest.raises(
        TypeError, match="documents must be a list of langchain_core Document objects, got str"
    ):
        compressor.compress_documents("a single string", QUERY)
    with pytest.raises(TypeError, match="query must be a string, got int"):
        compressor.compress_documents(as_documents(DOCUMENTS), 42)


def test_a_lent_reranker_is_used_as_is(bundled_reranker):
    compressor = EttinRerank(reranker=bundled_reranker)
    assert compressor.reranker is bundled_reranker and isinstance(compressor.reranker, Reranker)
    assert "reranker" not in compressor.model_dump()  # a loaded model is not serialised
