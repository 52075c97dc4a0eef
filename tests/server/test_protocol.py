"""Request and response shapes of every dialect, with the fake scorer and the real tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.inference.scores import apply_activation
from ettin_rerank.scoring import TokenizedPairScorer
from ettin_rerank.server.settings import default_served_name

QUERY = "why do cats purr"
DOCS = [
    "Cats are small domesticated carnivorous mammals that purr when content.",
    "Dogs are loyal animals that bark and fetch.",
    "Cats purr when they are happy.",
    "Photosynthesis converts sunlight, water and carbon dioxide into glucose.",
    "Cats purr when they are happy.",  # a duplicate of 2: an exact tie, broken by index
]


def expected_scores(scorer, query, docs, activation="sigmoid") -> np.ndarray:
    return apply_activation(scorer.score_pairs([(query, d) for d in docs]), activation)


def assert_ranked(results, score_key: str, expected: np.ndarray, n_docs: int, top_n: int | None = None):
    indices = [r["index"] for r in results]
    assert len(indices) == (top_n or n_docs)
    assert len(set(indices)) == len(indices) and all(0 <= i < n_docs for i in indices)
    scores = [r[score_key] for r in results]
    assert [(-s, i) for s, i in zip(scores, indices, strict=True)] == sorted(
        (-s, i) for s, i in zip(scores, indices, strict=True)
    ), "results must be sorted by score descending, ties by index"
    np.testing.assert_allclose(scores, expected[indices], rtol=1e-5, atol=1e-6)
    by_index = dict(zip(indices, scores, strict=True))
    if 2 in by_index and 4 in by_index and by_index[2] == by_index[4]:
        assert indices.index(2) < indices.index(4)


def test_reranker_and_fake_satisfy_the_scorer_protocol(scorer):
    assert isinstance(scorer, TokenizedPairScorer)


def test_ties_broken_by_index(fake_client):
    """Duplicate documents score exactly alike with the fake scorer; the lower index comes first."""
    docs = ["no overlap here", "cats purr", "nothing else", "cats purr", "zebra"]
    body = fake_client.post("/rerank", json={"query": "cats purr", "texts": docs, "raw_scores": True}).json()
    assert [item["index"] for item in body] == [1, 3, 0, 2, 4]
    assert body[0]["score"] == body[1]["score"] == 2.0 and body[2]["score"] == body[4]["score"] == -2.0


def test_cohere_v2(client, scorer):
    response = client.post(
        "/v2/rerank", json={"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 3}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "results", "meta", "usage"}
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])  # no documents unless asked
    assert_ranked(
        body["results"], "relevance_score", expected_scores(scorer, QUERY, DOCS), len(DOCS), top_n=3
    )
    meta = body["meta"]
    assert meta["api_version"] == {"version": "2"} and meta["billed_units"] == {"search_units": 1}
    assert [m["index"] for m in meta["results"]] == [r["index"] for r in body["results"]]
    encoded = scorer.encode([(QUERY, d) for d in DOCS])
    lengths = encoded.lengths
    assert [m["tokens"] for m in meta["results"]] == [int(lengths[m["index"]]) for m in meta["results"]]
    assert not any(m["truncated"] for m in meta["results"])
    assert body["usage"]["total_tokens"] == int(lengths.sum()) == meta["tokens"]["input_tokens"]


def test_cohere_v2_returns_documents_on_request(client, scorer):
    response = client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS, "return_documents": True})
    results = response.json()["results"]
    assert all(r["document"] == {"text": DOCS[r["index"]]} for r in results)


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_jina_vllm(client, scorer, path):
    documents = [{"text": d} for d in DOCS[:3]] + DOCS[3:]  # objects and strings mixed
    response = client.post(path, json={"model": "jina-reranker-v2", "query": QUERY, "documents": documents})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == default_served_name(scorer.name) and body["id"].startswith("rerank-")
    assert body["usage"]["total_tokens"] > 0
    for result in body["results"]:  # echoed by default in this dialect
        assert set(result) == {"index", "relevance_score", "document"}
        assert result["document"] == {"text": DOCS[result["index"]]}
    assert_ranked(body["results"], "relevance_score", expected_scores(scorer, QUERY, DOCS), len(DOCS))


def test_vllm_top_n_zero_means_all_and_use_activation_false_is_raw(client, scorer):
    body = client.post(
        "/v1/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 0, "use_activation": False}
    ).json()
    assert_ranked(body["results"], "relevance_score", expected_scores(scorer, QUERY, DOCS, None), len(DOCS))


def test_tei_bare_array(client, scorer):
    response = client.post("/rerank", json={"query": QUERY, "texts": DOCS})
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert all(set(item) == {"index", "score"} for item in body)
    assert_ranked(body, "score", expected_scores(scorer, QUERY, DOCS), len(DOCS))
    assert float(response.headers["x-compute-tokens"]) > 0 and "x-queue-time" in response.headers


def test_tei_raw_scores_and_return_text(client, scorer):
    body = client.post(
        "/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True, "return_text": True}
    ).json()
    assert all(item["text"] == DOCS[item["index"]] for item in body)
    assert_ranked(body, "score", expected_scores(scorer, QUERY, DOCS, None), len(DOCS))


def test_aliases_input_top_k_return_input(client, scorer):
    body = client.post(
        "/v1/rerank", json={"query": QUERY, "input": DOCS, "top_k": 2, "return_input": False}
    ).json()
    assert all("document" not in r for r in body["results"])
    assert_ranked(
        body["results"], "relevance_score", expected_scores(scorer, QUERY, DOCS), len(DOCS), top_n=2
    )


@pytest.mark.parametrize("path", ["/score", "/v1/score"])
def test_vllm_score_one_to_n(client, scorer, path):
    response = client.post(path, json={"model": "m", "text_1": QUERY, "text_2": DOCS})
    assert response.status_code == 200
    body = response.json()
    assert (
        body["object"] == "list"
        and isinstance(body["created"], int)
        and body["model"] == default_served_name(scorer.name)
    )
    assert [d["index"] for d in body["data"]] == list(range(len(DOCS)))  # input order, not ranked
    assert all(d["object"] == "score" for d in body["data"])
    np.testing.assert_allclose(
        [d["score"] for d in body["data"]], expected_scores(scorer, QUERY, DOCS), rtol=1e-5, atol=1e-6
    )
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_vllm_score_n_to_n(client, scorer):
    queries = ["cats", "dogs", "sunlight"]
    body = client.post("/score", json={"text_1": queries, "text_2": DOCS[:3], "use_activation": False}).json()
    expected = scorer.score_pairs(list(zip(queries, DOCS[:3], strict=True)))
    np.testing.assert_allclose([d["score"] for d in body["data"]], expected, rtol=1e-5, atol=1e-6)


def test_fp32_activation_matches_library(client, scorer):
    """Scores are the library's: fp32 logits through the fp32 sigmoid."""
    raw = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "use_activation": False}).json()
    activated = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
    raw_by_index = {r["index"]: r["relevance_score"] for r in raw["results"]}
    for result in activated["results"]:
        logit = np.float32(raw_by_index[result["index"]])
        assert result["relevance_score"] == pytest.approx(
            float(1 / (1 + np.exp(-np.float64(logit)))), abs=1e-6
        )


def test_operations_endpoints(client, scorer):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == default_served_name(scorer.name)
    assert models["data"][0]["max_model_len"] == scorer.max_length
    client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'ettin_rerank_requests_total{route="/v1/rerank",status="200"} 1.0' in metrics.text
    assert "ettin_rerank_pairs_scored_total" in metrics.text
    schema = client.get("/openapi.json").json()
    assert {"/v2/rerank", "/v1/rerank", "/rerank", "/score", "/v1/score"} <= set(schema["paths"])


# Each dialect's request fields (docs/http-dialects.md), and the server's own `long_document`.
VLLM_RERANK = {"model", "query", "documents", "top_n", "use_activation", "truncate_prompt_tokens"}
VLLM_RERANK |= {
    "truncation_side",
    "max_tokens_per_doc",
    "max_tokens_per_query",
    "user",
    "request_id",
    "priority",
}
VLLM_SCORE = {"model", "text_1", "text_2", "use_activation", "truncate_prompt_tokens", "truncation_side"}
VLLM_SCORE |= {"user", "request_id", "priority"}
COHERE = {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"}
COHERE |= {"return_documents", "rank_fields", "max_chunks_per_doc"}  # v1, and the first v2 API
JINA = {"model", "query", "documents", "top_n", "return_documents"}
VOYAGE = {"model", "query", "documents", "top_k", "return_documents", "truncation"}
MIXEDBREAD = {"model", "query", "input", "top_k", "return_input"}
TEI = {"query", "texts", "raw_scores", "return_text", "truncate", "truncation_direction"}
SERVER = {"long_document"}
ROUTE_FIELDS = {
    "/v2/rerank": COHERE | VLLM_RERANK | SERVER,
    "/v1/rerank": JINA | VLLM_RERANK | COHERE | VOYAGE | MIXEDBREAD | SERVER,
    "/rerank": TEI | VLLM_RERANK | SERVER,
    "/score": VLLM_SCORE | SERVER,
    "/v1/score": VLLM_SCORE | SERVER,
}


def request_schema(schema: dict, path: str) -> dict:
    reference = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]


@pytest.mark.parametrize("path", sorted(ROUTE_FIELDS))
def test_each_route_advertises_only_the_fields_of_the_dialects_it_serves(fake_client, path):
    body = request_schema(fake_client.get("/openapi.json").json(), path)
    assert set(body["properties"]) == ROUTE_FIELDS[path]
    assert body["additionalProperties"] is False


def test_the_schemas_require_the_documents_under_the_route_s_names(fake_client):
    schema = fake_client.get("/openapi.json").json()
    cohere, tei, v1 = (request_schema(schema, path) for path in ("/v2/rerank", "/rerank", "/v1/rerank"))
    assert {"query", "documents"} <= set(cohere["required"]) and "oneOf" not in cohere
    assert not {"texts", "text_1", "input", "raw_scores"} & set(cohere["properties"])
    assert tei["oneOf"] == [{"required": ["documents"]}, {"required": ["texts"]}]
    assert not {"text_1", "input", "rank_fields", "top_k"} & set(tei["properties"])
    assert v1["oneOf"] == [{"required": ["documents"]}, {"required": ["input"]}]
    assert not {"texts", "text_1", "raw_scores"} & set(v1["properties"])
