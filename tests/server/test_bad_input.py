"""Client mistakes get a 4xx JSON error naming the field; never a 500, never a dead worker."""

from __future__ import annotations

import json

import pytest

from .conftest import make_client
from .fake_scorer import FakeScorer

GOOD = {"query": "q", "documents": ["d"]}
CASES = [
    # (path, body, status, field)
    ("/v2/rerank", {"documents": ["d"]}, 422, "query"),
    ("/v2/rerank", {"query": "", "documents": ["d"]}, 422, "query"),
    ("/v2/rerank", {"query": "   ", "documents": ["d"]}, 422, "query"),
    ("/v2/rerank", {"query": 5, "documents": ["d"]}, 422, "query"),
    ("/v2/rerank", {"query": "q"}, 422, "documents"),
    ("/v2/rerank", {"query": "q", "documents": []}, 422, "documents"),
    ("/rerank", {"query": "q", "texts": []}, 422, "texts"),
    ("/v1/rerank", {"query": "q", "input": []}, 422, "input"),
    ("/v2/rerank", {"query": "q", "documents": "d"}, 422, "documents"),
    ("/v2/rerank", {"query": "q", "documents": ["d", 3]}, 422, "documents[1]"),
    ("/v2/rerank", {"query": "q", "documents": ["d", None]}, 422, "documents[1]"),
    ("/v2/rerank", {"query": "q", "documents": [{"txt": "d"}]}, 422, "documents[0].text"),
    ("/v2/rerank", {"query": "q", "documents": [{"text": 1}]}, 422, "documents[0].text"),
    ("/v2/rerank", {"query": "q", "documents": ["d"], "texts": ["d"]}, 422, "texts"),
    ("/v2/rerank", {**GOOD, "top_n": -1}, 422, "top_n"),
    ("/v2/rerank", {**GOOD, "top_n": "3"}, 422, "top_n"),
    ("/v2/rerank", {**GOOD, "top_n": 1.5}, 422, "top_n"),
    ("/v2/rerank", {**GOOD, "top_n": 1, "top_k": 1}, 422, "top_k"),
    ("/v2/rerank", {**GOOD, "return_documents": "yes"}, 422, "return_documents"),
    ("/v2/rerank", {**GOOD, "max_tokens_per_doc": 0}, 422, "max_tokens_per_doc"),
    ("/rerank", {**GOOD, "truncation_direction": "middle"}, 422, "truncation_direction"),
    ("/v2/rerank", {**GOOD, "long_document": "split"}, 422, "long_document"),
    ("/rerank", {**GOOD, "raw_scores": True, "use_activation": True}, 422, "use_activation"),
    ("/v2/rerank", {**GOOD, "rank_fields": ["title"]}, 422, "documents[0].title"),  # a field it lacks
    ("/v2/rerank", {**GOOD, "rank_fields": []}, 422, "rank_fields"),
    ("/v2/rerank", {**GOOD, "rank_fields": "text"}, 422, "rank_fields"),
    ("/v2/rerank", {**GOOD, "rank_fields": [""]}, 422, "rank_fields[0]"),
    ("/v2/rerank", {**GOOD, "rank_fields": ["text", "text"]}, 422, "rank_fields"),
    (
        "/v2/rerank",
        {"query": "q", "documents": [{"t": {"a": 1}}], "rank_fields": ["t"]},
        422,
        "documents[0].t",
    ),
    ("/v2/rerank", {"query": "q", "documents": [{"t": True}], "rank_fields": ["t"]}, 422, "documents[0].t"),
    ("/v2/rerank", {"query": "q", "documents": [7], "rank_fields": ["text"]}, 422, "documents[0]"),
    ("/v2/rerank", {**GOOD, "max_chunks_per_doc": 0}, 422, "max_chunks_per_doc"),
    ("/v2/rerank", {**GOOD, "max_chunks_per_doc": "2"}, 422, "max_chunks_per_doc"),
    ("/v2/rerank", {**GOOD, "max_chunks_per_doc": 2, "long_document": "truncate"}, 422, "max_chunks_per_doc"),
    ("/v2/rerank", {**GOOD, "rank_field": ["text"]}, 422, "rank_field"),  # unknown field
    ("/v2/rerank", {**GOOD, "top_nn": 3}, 422, "top_nn"),  # a typo is caught, not ignored
    ("/v2/rerank", [GOOD], 422, "body"),
    # a field of a dialect the route does not serve is unknown there
    ("/v2/rerank", {**GOOD, "raw_scores": True}, 422, "raw_scores"),
    ("/v2/rerank", {"query": "q", "input": ["d"]}, 422, "input"),
    ("/v1/rerank", {"query": "q", "texts": ["d"]}, 422, "texts"),
    ("/rerank", {**GOOD, "rank_fields": ["text"]}, 422, "rank_fields"),
    ("/rerank", {**GOOD, "top_k": 1}, 422, "top_k"),
    ("/score", {"text_1": "q", "text_2": ["d"], "documents": ["d"]}, 422, "documents"),
    ("/rerank", {"query": "q"}, 422, "documents"),
    ("/rerank", {"query": "q", "documents": ["d"], "texts": ["d"]}, 422, "texts"),
    ("/v1/rerank", {"query": "q", "documents": ["d"], "input": ["d"]}, 422, "input"),
    ("/score", {"text_1": "q"}, 422, "text_2"),
    ("/score", {"text_1": "q", "text_2": []}, 422, "text_2"),
    ("/score", {"text_1": [], "text_2": ["d"]}, 422, "text_1"),
    ("/score", {"text_1": ["a", "b"], "text_2": ["d", "e", "f"]}, 422, "text_1"),
    ("/score", {"text_1": "", "text_2": ["d"]}, 422, "text_1"),
    ("/score", {"text_1": "q", "text_2": [7]}, 422, "text_2[0]"),
]


@pytest.mark.parametrize("path,body,status,field", CASES)
def test_client_mistakes_name_the_field(fake_client, path, body, status, field):
    response = fake_client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    assert error["error"] == error["message"] and error["error_type"] == "validation"


@pytest.mark.parametrize(
    "content,status",
    [
        (b"", 422),
        (b"{", 400),
        (b"not json", 400),
        (b'{"query": "caf\xe9", "documents": ["d"]}', 400),  # latin-1, not UTF-8
        (b"\xff\xfe{}", 400),
        (b'{"query": "q", "documents": ["d"]} trailing', 400),
    ],
)
def test_malformed_bodies(fake_client, content, status):
    response = fake_client.post("/v2/rerank", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["field"] == "body"


def test_body_over_the_size_limit_and_too_many_documents():
    with make_client(FakeScorer(), max_body_bytes=2000, max_documents=5) as client:
        big = client.post("/v2/rerank", json={"query": "q", "documents": ["x" * 3000]})
        assert big.status_code == 413 and big.json()["field"] == "body"
        many = client.post("/v2/rerank", json={"query": "q", "documents": ["d"] * 6})
        assert many.status_code == 422 and many.json()["field"] == "documents"
        assert "at most 5" in many.json()["error"]
        assert client.post("/v2/rerank", json={"query": "q", "documents": ["d"] * 5}).status_code == 200


def test_wrong_method_and_unknown_route_are_json(fake_client):
    assert fake_client.get("/v2/rerank").status_code == 405
    missing = fake_client.post("/v3/rerank", json=GOOD)
    assert missing.status_code == 404 and missing.json()["error_type"] == "not_found"


def test_the_worker_survives_every_mistake(fake_client):
    for path, body, _, _ in CASES:
        fake_client.post(
            path, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
    response = fake_client.post("/v2/rerank", json=GOOD)
    assert response.status_code == 200
    metrics = fake_client.get("/metrics").text
    assert 'status="500"' not in metrics
