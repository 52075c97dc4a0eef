"""The default score: the model's calibrated probability when it has a calibration, else the
sigmoid; the dialects' explicit options keep their meaning."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ettin_rerank import Reranker
from ettin_rerank.inference.calibration import Calibration
from ettin_rerank.inference.scores import apply_activation

from .conftest import TINY_MAX_LENGTH, make_client
from .fake_scorer import FakeScorer

QUERY = "why do cats purr"
DOCS = ["cats purr when happy", "why cats", "dogs bark", "do cats purr why"]
PLATT = Calibration(
    method="platt", parameters={"a": 1.5, "b": -2.0}, fitted_on={"dataset": "scifact", "split": "train"}
)


def calibrated_fake(calibration: Calibration = PLATT) -> FakeScorer:
    scorer = FakeScorer()
    scorer.calibration = calibration
    return scorer


def raw(scorer, docs=DOCS) -> np.ndarray:
    return scorer.score_pairs([(QUERY, d) for d in docs])


def by_index(results, key="relevance_score") -> np.ndarray:
    scores = {r["index"]: r[key] for r in results}
    return np.asarray([scores[i] for i in range(len(scores))], dtype=np.float64)


def test_an_uncalibrated_model_scores_with_the_sigmoid_and_says_so(fake_client):
    assert fake_client.get("/v1/models").json()["data"][0]["relevance_score"] == "sigmoid"
    body = fake_client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
    expected = apply_activation(raw(FakeScorer()), "sigmoid")
    np.testing.assert_allclose(by_index(body["results"]), expected, rtol=1e-6)


def test_a_calibrated_model_scores_with_its_calibration_in_every_dialect():
    scorer = calibrated_fake()
    calibrated = PLATT.probabilities(raw(scorer))
    with make_client(scorer) as client:
        card = client.get("/v1/models").json()["data"][0]
        assert card["relevance_score"] == "calibrated (platt, fitted on scifact train)"
        for path in ("/v2/rerank", "/v1/rerank"):
            body = client.post(path, json={"query": QUERY, "documents": DOCS}).json()
            np.testing.assert_allclose(by_index(body["results"]), calibrated, rtol=1e-6)
        tei = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
        np.testing.assert_allclose(by_index(tei, "score"), calibrated, rtol=1e-6)
        score = client.post("/score", json={"text_1": QUERY, "text_2": DOCS}).json()
        np.testing.assert_allclose([d["score"] for d in score["data"]], calibrated, rtol=1e-6)
    assert not np.allclose(calibrated, apply_activation(raw(scorer), "sigmoid"))  # a test that can fail


@pytest.mark.parametrize(
    "path,options,expected",
    [
        ("/rerank", {"raw_scores": True}, None),  # TEI: raw logits
        ("/rerank", {"raw_scores": False}, "sigmoid"),  # TEI's activation is the sigmoid
        ("/v1/rerank", {"use_activation": False}, None),  # vLLM: raw logits
        ("/v1/rerank", {"use_activation": True}, "sigmoid"),  # vLLM's activation is the sigmoid
        ("/score", {"use_activation": True}, "sigmoid"),
        ("/score", {"use_activation": False}, None),
    ],
)
def test_explicit_dialect_options_keep_their_meaning(path, options, expected):
    scorer = calibrated_fake()
    if path == "/score":
        body = {"text_1": QUERY, "text_2": DOCS, **options}
    else:
        body = {"query": QUERY, ("texts" if "raw_scores" in options else "documents"): DOCS, **options}
    with make_client(scorer) as client:
        answer = client.post(path, json=body).json()
    if path == "/score":
        got = np.asarray([d["score"] for d in answer["data"]])
    else:
        got = by_index(
            answer if isinstance(answer, list) else answer["results"],
            "score" if isinstance(answer, list) else "relevance_score",
        )
    np.testing.assert_allclose(got, apply_activation(raw(scorer), expected), rtol=1e-6)


def test_a_flat_calibration_keeps_the_model_s_order():
    """Isotonic maps are flat in places: documents the model told apart keep its order."""
    flat = Calibration(method="isotonic", parameters={"x": [-2.0, 2.0], "y": [0.3, 0.3]}, fitted_on={})
    scorer = calibrated_fake(flat)
    with make_client(scorer) as client:
        assert client.get("/v1/models").json()["data"][0]["relevance_score"] == "calibrated (isotonic)"
        results = client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()["results"]
    assert all(r["relevance_score"] == pytest.approx(0.3) for r in results)
    logits = raw(scorer)
    assert [r["index"] for r in results] == sorted(range(len(DOCS)), key=lambda i: (-logits[i], i))
    assert len(set(logits.tolist())) > 1


def test_a_real_model_directory_with_calibration_json(tiny_model_dir: Path, tmp_path: Path):
    """The file `ettin-rerank calibrate` writes, loaded by Reranker.from_pretrained, used by the server."""
    model_dir = tmp_path / "calibrated-tiny"
    shutil.copytree(tiny_model_dir, model_dir)
    PLATT.save(model_dir)
    reranker = Reranker.from_pretrained(model_dir, max_length=TINY_MAX_LENGTH)
    assert reranker.calibration == PLATT
    with make_client(reranker) as client:
        card = client.get("/v1/models").json()["data"][0]
        body = client.post("/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert card["relevance_score"] == "calibrated (platt, fitted on scifact train)"
    assert card["id"] == "calibrated-tiny"
    expected = reranker.predict([(QUERY, d) for d in DOCS], activation="calibrated")
    np.testing.assert_allclose(by_index(body["results"]), expected, rtol=1e-4, atol=1e-6)


def test_v1_models_reports_the_licence_the_model_card_declares(tiny_model_dir: Path, tmp_path: Path):
    model_dir = tmp_path / "carded-tiny"
    shutil.copytree(tiny_model_dir, model_dir)
    reranker = Reranker.from_pretrained(model_dir, max_length=TINY_MAX_LENGTH)
    with make_client(reranker) as client:
        assert client.get("/v1/models").json()["data"][0]["license"] is None  # no card, nothing claimed
    (model_dir / "README.md").write_text("---\nlicense: apache-2.0\n---\n\n# a tiny model\n")
    reranker = Reranker.from_pretrained(model_dir, max_length=TINY_MAX_LENGTH)
    with make_client(reranker) as client:
        assert client.get("/v1/models").json()["data"][0]["license"] == "apache-2.0"
    # `license: other` names its terms in `license_name:` (the Hub's convention); that name is reported
    (model_dir / "README.md").write_text(
        "---\nlicense: other\nlicense_name: research-only\nlicense_note: ask first\n---\n\n# a tiny model\n"
    )
    reranker = Reranker.from_pretrained(model_dir, max_length=TINY_MAX_LENGTH)
    with make_client(reranker) as client:
        assert client.get("/v1/models").json()["data"][0]["license"] == "research-only: ask first"
