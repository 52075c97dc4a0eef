"""Cohere v1's rerank fields: structured documents with `rank_fields`, and `max_chunks_per_doc`."""

from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.inference.tokenization import chunk_windows

from .conftest import make_client
from .fake_scorer import FakeScorer

QUERY = "why do cats purr"
RECORDS = [
    {"title": "Dogs", "body": "Dogs bark at strangers.", "year": 2019, "tags": ["pets"]},
    {"title": "Why cats purr", "body": "Cats purr when they are content.", "year": 2021},
    {"title": "Volcanoes", "body": "Lava flows downhill.", "year": 2020},
]


def joined(record: dict, fields: list[str]) -> str:
    return "\n".join(f"{field}: {record[field]}" for field in fields)


@pytest.mark.parametrize("fields", [["title", "body"], ["body", "title", "year"]])
def test_rank_fields_score_the_named_fields_as_lines(client, scorer, fields):
    body = client.post(
        "/v1/rerank",
        json={"query": QUERY, "documents": RECORDS, "rank_fields": fields, "use_activation": False},
    ).json()
    texts = [joined(record, fields) for record in RECORDS]
    expected = scorer.score_pairs([(QUERY, text) for text in texts])
    got = {r["index"]: r["relevance_score"] for r in body["results"]}
    np.testing.assert_allclose([got[i] for i in range(len(RECORDS))], expected, rtol=1e-5, atol=1e-6)
    # return_documents keeps its shape: {"text": what was scored}
    assert all(r["document"] == {"text": texts[r["index"]]} for r in body["results"])


def test_rank_fields_treat_a_string_document_as_its_text(fake_client):
    body = fake_client.post(
        "/v2/rerank",
        json={
            "query": "cats purr",
            "documents": ["cats purr", {"text": "dogs"}],
            "rank_fields": ["text"],
            "return_documents": True,
        },
    ).json()
    assert sorted(r["document"]["text"] for r in body["results"]) == ["text: cats purr", "text: dogs"]


def test_a_missing_rank_field_is_a_422_naming_it(fake_client):
    response = fake_client.post(
        "/v2/rerank", json={"query": QUERY, "documents": RECORDS, "rank_fields": ["title", "abstract"]}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "documents[0].abstract"
    assert "'abstract'" in response.json()["message"] and "rank_fields" in response.json()["message"]
    listed = fake_client.post(
        "/v2/rerank", json={"query": QUERY, "documents": RECORDS, "rank_fields": ["tags"]}
    )
    assert listed.status_code == 422 and listed.json()["field"] == "documents[0].tags"


def test_objects_without_rank_fields_are_scored_by_their_text_as_before(fake_client):
    body = fake_client.post(
        "/v2/rerank",
        json={"query": "cats", "documents": [{"text": "cats", "title": "ignored"}], "use_activation": False},
    ).json()
    assert body["results"][0]["relevance_score"] == 2.0
    missing = fake_client.post("/v2/rerank", json={"query": "q", "documents": [{"title": "t"}]})
    assert missing.status_code == 422 and missing.json()["field"] == "documents[0].text"


# -- max_chunks_per_doc ---------------------------------------------------------------------------
MAX_LENGTH = 16
WINDOW = MAX_LENGTH - 3 - 2 - 4  # max length - specials - query ("cats purr") - margin
LONG = " ".join(f"w{i}" for i in range(40)) + " cats purr " + " ".join(f"v{i}" for i in range(10))
N_TOKENS = 52
ALL_WINDOWS = chunk_windows(N_TOKENS, WINDOW)


def rerank(client, **options) -> dict:
    response = client.post(
        "/v1/rerank", json={"query": "cats purr", "documents": [LONG], "use_activation": False, **options}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return {"score": body["results"][0]["relevance_score"], **body["meta"]["results"][0]}


def test_max_chunks_per_doc_scores_the_first_windows_only():
    assert len(ALL_WINDOWS) > 3
    with make_client(FakeScorer(max_length=MAX_LENGTH)) as client:
        every = rerank(client, long_document="chunk")
        capped = rerank(client, long_document="chunk", max_chunks_per_doc=2)
        implied = rerank(client, max_chunks_per_doc=2)  # the field asks for chunking (Cohere v1)
        roomy = rerank(client, max_chunks_per_doc=len(ALL_WINDOWS))
    assert every["score"] == 2.0 and every["n_chunks"] == len(ALL_WINDOWS) and not every["truncated"]
    assert capped["score"] == -2.0  # the match lies in a later window
    assert capped["n_chunks"] == 2 and capped["truncated"] is True and capped["document_tokens"] == N_TOKENS
    assert capped["tokens"] == sum(3 + 2 + (b - a) for a, b in ALL_WINDOWS[:2])
    assert implied == capped
    assert roomy == every


def test_the_server_cap_bounds_every_chunked_request():
    with make_client(
        FakeScorer(max_length=MAX_LENGTH), long_document="chunk", max_chunks_per_doc=2
    ) as client:
        assert rerank(client)["n_chunks"] == 2
        assert rerank(client, max_chunks_per_doc=1)["n_chunks"] == 1  # a request may ask for fewer
        assert rerank(client, max_chunks_per_doc=5)["n_chunks"] == 2  # not more
        score = client.post(
            "/score", json={"text_1": "cats purr", "text_2": [LONG], "use_activation": False}
        ).json()
        assert score["meta"]["results"][0]["n_chunks"] == 2
