"""Optional bearer API key."""

from __future__ import annotations

from .conftest import make_client
from .fake_scorer import FakeScorer

BODY = {"query": "q", "documents": ["d"]}


def test_api_key_is_required_except_for_health():
    with make_client(FakeScorer(), api_key="s3cret") as client:
        assert client.get("/health").status_code == 200
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "s3cret"},
            {"Authorization": "Basic s3cret"},
        ):
            response = client.post("/v2/rerank", json=BODY, headers=headers)
            assert response.status_code == 401
            assert (
                response.headers["www-authenticate"] == "Bearer"
                and response.json()["field"] == "authorization"
            )
        assert client.get("/metrics").status_code == 401
        assert client.get("/ready").status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert client.post("/v2/rerank", json=BODY, headers=ok).status_code == 200
        assert (
            client.post(
                "/rerank", json={"query": "q", "texts": ["d"]}, headers={"authorization": "bearer s3cret"}
            ).status_code
            == 200
        )


def test_no_key_means_open():
    with make_client(FakeScorer()) as client:
        assert client.post("/v2/rerank", json=BODY).status_code == 200


def test_metrics_public_opens_metrics_and_nothing_else():
    with make_client(FakeScorer(), api_key="s3cret", metrics_public=True) as client:
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "ettin_rerank_requests_total" in metrics.text
        assert client.get("/ready").status_code == 401
        assert client.get("/v1/models").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        assert client.post("/v2/rerank", json=BODY).status_code == 401
        assert (
            client.post("/v2/rerank", json=BODY, headers={"Authorization": "Bearer s3cret"}).status_code
            == 200
        )
