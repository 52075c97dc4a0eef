"""Long documents: truncation reports, per-request token limits, left truncation, chunking."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from ettin_rerank.inference.tokenization import chunk_windows

from .conftest import TINY_MAX_LENGTH, make_client
from .fake_scorer import FakeScorer

FILLER = " ".join(f"filler{i}" for i in range(60))


def test_default_truncation_is_reported_and_matches_predict(client, scorer):
    long_doc = "cats purr " + " ".join(["many words about other things"] * 80)
    docs = ["cats purr", long_doc]
    body = client.post(
        "/v1/rerank", json={"query": "why do cats purr", "documents": docs, "use_activation": False}
    ).json()
    meta = {m["index"]: m for m in body["meta"]["results"]}
    assert meta[1]["truncated"] is True and meta[1]["tokens"] == scorer.max_length
    assert (
        meta[1]["document_tokens"] == len(scorer.tokenizer.tokenize_texts([long_doc])[0]) > scorer.max_length
    )
    assert meta[0]["truncated"] is False and "document_tokens" not in meta[0]
    assert body["meta"]["truncated_documents"] == 1
    expected = scorer.score_pairs([("why do cats purr", d) for d in docs])
    got = {r["index"]: r["relevance_score"] for r in body["results"]}
    np.testing.assert_allclose([got[0], got[1]], expected, rtol=1e-5, atol=1e-6)


def test_max_tokens_per_doc_cuts_each_document(fake_client):
    doc = "a b c d e f g h"
    for side, kept in (("right", "a b c d e"), ("left", "d e f g h")):
        body = fake_client.post(
            "/v1/rerank",
            json={
                "query": "a e h",
                "documents": [doc],
                "max_tokens_per_doc": 5,
                "truncation_side": side,
                "use_activation": False,
            },
        ).json()
        expected = FakeScorer().score_pairs([("a e h", kept)])[0]
        assert body["results"][0]["relevance_score"] == pytest.approx(float(expected))
        assert body["meta"]["results"][0] == {
            "index": 0,
            "tokens": 3 + 3 + 5,
            "truncated": True,
            "document_tokens": 8,
        }


def test_max_tokens_per_doc_with_the_real_tokenizer(tiny_reranker):
    with make_client(tiny_reranker) as client:
        doc = "The quick brown fox jumps over the lazy dog near the river bank today."
        body = client.post(
            "/v2/rerank", json={"query": "fox", "documents": [doc], "max_tokens_per_doc": 4}
        ).json()
        meta = body["meta"]["results"][0]
        query_tokens = len(tiny_reranker.tokenizer.tokenize_texts(["fox"])[0])
        assert meta["truncated"] is True and meta["document_tokens"] == len(
            tiny_reranker.tokenizer.tokenize_texts([doc])[0]
        )
        assert meta["tokens"] == tiny_reranker.tokenizer.num_special_tokens + query_tokens + 4


def test_tei_left_truncation_keeps_the_end():
    doc = FILLER + " cats purr"  # the match is at the very end
    with make_client(FakeScorer(max_length=16)) as client:
        right = client.post("/rerank", json={"query": "cats purr", "texts": [doc], "raw_scores": True}).json()
        left = client.post(
            "/rerank",
            json={"query": "cats purr", "texts": [doc], "raw_scores": True, "truncation_direction": "Left"},
        ).json()
    assert right[0]["score"] == -2.0
    assert left[0]["score"] == 2.0


def test_truncation_disabled_refuses_long_pairs(fake_client):
    response = fake_client.post(
        "/rerank", json={"query": "q", "texts": ["short", f"{FILLER} {FILLER} {FILLER}"], "truncate": False}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "texts[1]"
    ok = fake_client.post("/rerank", json={"query": "q", "texts": ["short"], "truncate": False})
    assert ok.status_code == 200


def test_chunking_scores_the_best_window():
    scorer = FakeScorer(max_length=16)
    doc = " ".join(f"w{i}" for i in range(40)) + " cats purr " + " ".join(f"v{i}" for i in range(10))
    with make_client(scorer) as client:
        truncated = client.post(
            "/v1/rerank", json={"query": "cats purr", "documents": [doc], "use_activation": False}
        ).json()
        chunked = client.post(
            "/v1/rerank",
            json={
                "query": "cats purr",
                "documents": [doc],
                "use_activation": False,
                "long_document": "chunk",
            },
        ).json()
    assert truncated["results"][0]["relevance_score"] == -2.0  # the match lies past the max length
    assert chunked["results"][0]["relevance_score"] == 2.0
    window = 16 - 3 - 2 - 4  # max length - specials - query - margin
    meta = chunked["meta"]["results"][0]
    assert meta["n_chunks"] == len(chunk_windows(52, window)) > 1
    assert meta["truncated"] is False and meta["document_tokens"] == 52
    assert meta["tokens"] == sum(3 + 2 + (b - a) for a, b in chunk_windows(52, window))


def test_chunking_with_the_real_model_is_the_max_over_windows(tiny_reranker):
    doc = " ".join(["Cats purr for many reasons, including contentment and healing."] * 30)
    query = "why do cats purr"
    with make_client(tiny_reranker, long_document="chunk") as client:  # the server default
        body = client.post(
            "/score", json={"text_1": query, "text_2": [doc, "short"], "use_activation": False}
        ).json()
    tokens = tiny_reranker.tokenizer.tokenize_texts([doc])[0]
    query_tokens = len(tiny_reranker.tokenizer.tokenize_texts([query])[0])
    window = TINY_MAX_LENGTH - tiny_reranker.tokenizer.num_special_tokens - query_tokens - 4
    windows = [tokens.span(a, b) for a, b in chunk_windows(len(tokens), window)]
    expected = tiny_reranker.predict([(query, w) for w in windows], activation=None).max()
    assert body["data"][0]["score"] == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
    assert body["meta"]["results"][0]["n_chunks"] == len(windows) > 1
    assert body["meta"]["results"][1]["n_chunks"] == 1


def test_truncate_prompt_tokens(fake_client):
    body = fake_client.post(
        "/v1/rerank", json={"query": "q", "documents": [FILLER], "truncate_prompt_tokens": 10}
    ).json()
    assert body["meta"]["results"][0]["tokens"] == 10 and body["meta"]["results"][0]["truncated"] is True
    for bad in (4, TINY_MAX_LENGTH + 1, -2):
        response = fake_client.post(
            "/v1/rerank", json={"query": "q", "documents": ["d"], "truncate_prompt_tokens": bad}
        )
        assert response.status_code == 422 and response.json()["field"] == "truncate_prompt_tokens"


def test_a_document_whose_chunks_cannot_finish_in_time_is_a_413_naming_the_limit():
    """About 50 windows at 20 ms each against a 0.4 s timeout: retrying cannot help, so no 503."""
    scorer = FakeScorer(max_length=16, seconds_per_pair=0.02)
    long_doc = " ".join(f"w{i}" for i in range(300))
    body = {"query": "cats purr", "documents": ["cats purr", long_doc], "long_document": "chunk"}
    with make_client(scorer, timeout_s=0.4, batch_tokens=64) as client:
        first = client.post("/v2/rerank", json=body)  # no speed measured yet: answered at the timeout
        assert first.status_code == 413, first.text
        error = first.json()
        assert error["error_type"] == "too_much_work" and error["field"] == "documents[1]"
        assert "--timeout" in error["message"] and "retrying cannot help" in error["message"]
        assert "retry-after" not in first.headers
        fits = int(re.search(r"max_chunks_per_doc=(\d+)", error["message"]).group(1))
        assert 1 <= fits < 50
        started = time.monotonic()
        again = client.post("/v2/rerank", json=body)  # the speed is known: refused before queueing
        assert again.status_code == 413 and time.monotonic() - started < 0.3
        capped = client.post("/v2/rerank", json={**body, "max_chunks_per_doc": max(fits // 2, 1)})
        assert capped.status_code == 200, capped.text
        assert {m["index"]: m["n_chunks"] for m in capped.json()["meta"]["results"]}[1] == max(fits // 2, 1)
        metrics = client.get("/metrics").text
    assert 'ettin_rerank_rejected_total{reason="too_much_work"} 2.0' in metrics
    assert 'reason="timeout"' not in metrics
