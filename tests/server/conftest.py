"""Fixtures for the HTTP service: the fake scorer, a random-weight `tiny` reranker, app clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from ettin_rerank.server import ServerSettings, create_app  # noqa: E402

from .fake_scorer import FakeScorer  # noqa: E402

TINY_MAX_LENGTH = 128  # short pairs keep the random tiny model fast on a 2-core machine


@pytest.fixture(scope="session")
def tiny_model_dir(modernbert_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ettin_rerank.family import create_random_reranker

    return create_random_reranker(
        "tiny", modernbert_tokenizer_dir, tmp_path_factory.mktemp("tiny-reranker"), seed=0
    )


@pytest.fixture(scope="session")
def tiny_reranker(tiny_model_dir: Path):
    from ettin_rerank import Reranker

    return Reranker.from_pretrained(tiny_model_dir, max_length=TINY_MAX_LENGTH)


@pytest.fixture(params=["fake", "tiny"])
def scorer(request: pytest.FixtureRequest):
    """Each protocol test runs with the fake scorer and once with the real tiny model."""
    if request.param == "fake":
        return FakeScorer(max_length=TINY_MAX_LENGTH)
    return request.getfixturevalue("tiny_reranker")


def make_client(scorer, **settings) -> TestClient:
    return TestClient(create_app(scorer, ServerSettings(**settings)))


@pytest.fixture
def client(scorer) -> Iterator[TestClient]:
    with make_client(scorer) as test_client:
        yield test_client


@pytest.fixture
def fake_client() -> Iterator[TestClient]:
    with make_client(FakeScorer(max_length=TINY_MAX_LENGTH)) as test_client:
        yield test_client
