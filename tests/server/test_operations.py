"""Operating the service: the served model's name, /docs, the access log, the serve flags."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from ettin_rerank.cli import build_parser
from ettin_rerank.cli.serve import settings_from_args
from ettin_rerank.models import BUNDLED_MODEL_DIR
from ettin_rerank.server.settings import BUNDLED_MODEL_ID, ServerSettings, default_served_name

from .conftest import make_client
from .fake_scorer import FakeScorer

BODY = {"query": "cats purr", "documents": ["cats purr", "dogs bark"]}


def test_the_default_served_name_is_a_directory_name_or_a_hub_id(tmp_path, monkeypatch):
    model = tmp_path / "models" / "my-reranker"
    model.mkdir(parents=True)
    assert default_served_name(str(model)) == "my-reranker"
    assert default_served_name(f"{model}/") == "my-reranker"
    assert default_served_name(str(tmp_path / "gone" / "reranker")) == "reranker"  # a path, even if absent
    assert default_served_name("~/models/reranker") == "reranker"
    assert default_served_name("jinaai/jina-reranker-v2") == "jinaai/jina-reranker-v2"  # a Hub id as it is
    assert default_served_name(str(BUNDLED_MODEL_DIR)) == BUNDLED_MODEL_ID
    monkeypatch.chdir(tmp_path)
    assert default_served_name("models/my-reranker") == "my-reranker"  # a local directory wins
    assert default_served_name("./models/my-reranker") == "my-reranker"


def names_in_every_answer(client) -> set[str]:
    return {
        client.get("/v1/models").json()["data"][0]["id"],
        client.get("/ready").json()["model"],
        client.get("/info").json()["model_id"],
        client.post("/v1/rerank", json=BODY).json()["model"],
        client.post("/score", json={"text_1": "q", "text_2": ["d"]}).json()["model"],
    }


def test_a_model_directory_is_served_by_its_name_never_its_path(tiny_model_dir: Path, tiny_reranker):
    assert Path(tiny_reranker.name) == tiny_model_dir  # the reranker knows its path
    with make_client(tiny_reranker) as client:
        assert names_in_every_answer(client) == {tiny_model_dir.name}
        models = client.get("/v1/models").text
    assert str(tiny_model_dir.parent) not in models


def test_served_model_name_names_the_model_everywhere():
    with make_client(FakeScorer(), served_model_name="acme/reranker-v1") as client:
        assert names_in_every_answer(client) == {"acme/reranker-v1"}
    with pytest.raises(ValueError, match="served_model_name"):
        ServerSettings(served_model_name=" ")


def test_docs_are_off_by_default_and_the_openapi_document_stays(fake_client):
    assert fake_client.get("/docs").status_code == 404
    assert fake_client.get("/redoc").status_code == 404
    assert "/v2/rerank" in fake_client.get("/openapi.json").json()["paths"]


def test_the_docs_flag_serves_swagger_ui():
    with make_client(FakeScorer(), docs=True) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text and "/openapi.json" in page.text


def test_the_access_log_has_method_path_status_and_duration(caplog):
    caplog.set_level(logging.INFO, logger="ettin_rerank.server.access")
    with make_client(FakeScorer(), access_log=True) as client:
        client.post("/v2/rerank", json=BODY)
        client.post("/v2/rerank", json={"query": ""})
        client.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "ettin_rerank.server.access"]
    assert len(lines) == 3
    assert re.fullmatch(r"\S+ POST /v2/rerank 200 \d+\.\d ms", lines[0]), lines[0]
    assert re.fullmatch(r"\S+ POST /v2/rerank 422 \d+\.\d ms", lines[1]), lines[1]
    assert re.fullmatch(r"\S+ GET /health 200 \d+\.\d ms", lines[2]), lines[2]


def test_no_access_log_unless_asked(caplog):
    caplog.set_level(logging.INFO, logger="ettin_rerank.server.access")
    with make_client(FakeScorer()) as client:
        client.post("/v2/rerank", json=BODY)
    assert not [r for r in caplog.records if r.name == "ettin_rerank.server.access"]


def test_serve_flags_set_the_settings():
    args = build_parser().parse_args(
        [
            "serve",
            "--served-model-name",
            "acme/rr",
            "--access-log",
            "--metrics-public",
            "--docs",
            "--max-chunks-per-doc",
            "8",
            "--timeout",
            "5",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.served_model_name, settings.access_log, settings.metrics_public, settings.docs) == (
        "acme/rr",
        True,
        True,
        True,
    )
    assert settings.max_chunks_per_doc == 8 and settings.timeout_s == 5.0
    defaults = settings_from_args(build_parser().parse_args(["serve"]))
    assert defaults == ServerSettings(api_key=defaults.api_key)  # no flag: the library's defaults
