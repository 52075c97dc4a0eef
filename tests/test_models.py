"""Which model runs when none is named: argument, then ETTIN_RERANK_MODEL, then the bundled one."""

from __future__ import annotations

import pytest

from ettin_rerank import models


def test_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv(models.ENV_VAR, "/from/env")
    choice = models.resolve_model("/from/arg")
    assert choice.name_or_path == "/from/arg" and choice.source == "argument"


def test_environment_wins_over_bundled(monkeypatch):
    monkeypatch.setenv(models.ENV_VAR, "/from/env")
    choice = models.resolve_model(None)
    assert choice.name_or_path == "/from/env" and models.ENV_VAR in choice.source


def test_nothing_named_and_nothing_bundled(monkeypatch, tmp_path):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.setattr(models, "BUNDLED_MODEL_DIR", tmp_path / "absent")
    assert models.resolve_model(None) is None
    with pytest.raises(ValueError, match="--model"):
        models.require_model(None)


def test_bundled_model_is_used_when_present(monkeypatch, tiny_reranker_dir):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.setattr(models, "BUNDLED_MODEL_DIR", tiny_reranker_dir)
    choice = models.resolve_model(None)
    assert choice.name_or_path == str(tiny_reranker_dir) and choice.source == "bundled"
