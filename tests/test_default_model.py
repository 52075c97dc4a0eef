"""The reranker bundled with the package: found with no `--model`, loads identically in
sentence-transformers, small enough to ship, and ranks the obviously relevant first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker, models

# (query, relevant, irrelevant): any useful reranker orders these correctly.
OBVIOUS = [
    (
        "what causes malaria?",
        "Malaria is caused by Plasmodium parasites, transmitted to people through the bites of "
        "infected female Anopheles mosquitoes.",
        "The central bank left interest rates unchanged and said inflation is slowly easing.",
    ),
    (
        "vitamin D deficiency and bone fractures",
        "Low serum vitamin D concentrations were associated with an increased risk of hip "
        "fractures in older adults.",
        "The orchestra performed Beethoven's ninth symphony to a sold-out concert hall.",
    ),
    (
        "does smoking increase the risk of lung cancer?",
        "Cigarette smoking is the leading cause of lung cancer; smokers have a many-fold higher "
        "risk than people who never smoked.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
    ),
    (
        "how do statins lower cholesterol?",
        "Statins inhibit HMG-CoA reductase, the rate-limiting enzyme of cholesterol synthesis in "
        "the liver, which lowers LDL cholesterol.",
        "Glaciers carve U-shaped valleys as they slowly move down mountains.",
    ),
]


@pytest.fixture(scope="module")
def bundled():
    path = models.BUNDLED_MODEL_DIR
    assert (path / "modules.json").is_file(), f"no bundled model in {path}"
    return path


def test_bundled_model_is_the_default(monkeypatch, bundled):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    choice = models.resolve_model(None)
    assert choice is not None and choice.source == "bundled"
    assert choice.name_or_path == str(bundled)


def test_bundled_model_fits_the_repository_budget(bundled):
    total = sum(f.stat().st_size for f in bundled.rglob("*") if f.is_file())
    assert total < 60 * 1024 * 1024
    assert (bundled / "README.md").is_file()


def test_bundled_model_scores_like_sentence_transformers(bundled):
    from sentence_transformers import CrossEncoder

    pairs = [(q, d) for q, relevant, irrelevant in OBVIOUS for d in (relevant, irrelevant)]
    ours = Reranker.from_pretrained(bundled).predict(pairs)
    theirs = CrossEncoder(str(bundled), activation_fn=torch.nn.Identity()).predict(pairs)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_bundled_model_ranks_the_relevant_document_first(bundled):
    reranker = Reranker.from_pretrained(bundled)
    for query, relevant, irrelevant in OBVIOUS:
        scores = reranker.predict([(query, relevant), (query, irrelevant)])
        assert scores[0] > scores[1], (query, scores)


def test_cli_uses_the_bundled_model_without_model_argument(bundled):
    env = {k: v for k, v in os.environ.items() if k != models.ENV_VAR}
    run = [sys.executable, "-m", "ettin_rerank"]
    info = subprocess.run([*run, "info", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["source"] == "bundled" and described["model"] == str(bundled)
    assert described["architecture"].startswith("BertModel")
    # The weights inherit their training text's non-commercial terms: info says so, and so does the library.
    assert described["license"].startswith("non-commercial-research: ")
    assert "CC BY-NC 2.0" in described["license"] and "MS MARCO" in described["license"]
    assert described["relevance_score"] == "calibrated"
    # the card's evaluation figures, as its front matter states them
    assert "NDCG@10" in described["evaluation"] and "DL19" in described["evaluation"]

    query, relevant, irrelevant = OBVIOUS[0]
    ranked = subprocess.run(
        [*run, "rank", "--query", query, "--json", "-"],
        input=f"{irrelevant}\n{relevant}\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ranked.returncode == 0, ranked.stderr
    results = json.loads(ranked.stdout)["results"]
    assert [r["index"] for r in results] == [1, 0]


def test_search_reranks_with_the_bundled_model(bundled, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    query, relevant, irrelevant = OBVIOUS[2]
    (notes / "relevant.txt").write_text(relevant)
    (notes / "irrelevant.txt").write_text(irrelevant + " Smoking is banned in the hall.")
    env = {k: v for k, v in os.environ.items() if k != models.ENV_VAR}
    result = subprocess.run(
        [sys.executable, "-m", "ettin_rerank", "search", str(notes), query, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["reranked"] is True
    assert [r["doc_id"] for r in payload["results"]][0] == "relevant.txt"
