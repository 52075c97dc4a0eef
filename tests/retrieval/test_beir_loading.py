from __future__ import annotations

import json
import logging

import pytest

from ettin_rerank.retrieval import Document, document_text, load_beir, load_corpus, write_beir


def test_loads_tiny_dataset(tiny_beir):
    dataset = load_beir(tiny_beir, "test")
    assert len(dataset.corpus) == 8
    assert list(dataset.queries) == ["q1", "q2", "q3", "q4"]
    assert dataset.qrels["q2"] == {"d3": 2, "d8": 0}
    assert dataset.issues.queries_without_positive == ["q4"]
    assert dataset.name == "tiny" and dataset.split == "test"


def test_document_text_rule():
    assert document_text("Cats", "purr.") == "Cats purr."
    assert document_text("", "purr.") == "purr."
    assert document_text("  ", "purr.") == "purr."
    assert document_text(None, None) == ""
    assert Document("x", "T", "body").text_for_scoring == "T body"


def test_missing_qrels_split_lists_available(tiny_beir):
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv is missing; splits available: test"):
        load_beir(tiny_beir, "dev")


def test_missing_corpus(tiny_beir):
    (tiny_beir / "corpus.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        load_beir(tiny_beir)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset directory not found"):
        load_beir(tmp_path / "nope")


def test_malformed_corpus_line_reports_line_number(tiny_beir):
    lines = (tiny_beir / "corpus.jsonl").read_text().splitlines()
    lines[2] = '{"_id": "d3", "text": broken'
    (tiny_beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3: not valid JSON"):
        load_beir(tiny_beir)


def test_missing_id_and_duplicates(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"title": "t", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match=r":1: missing the \"_id\" field"):
        load_corpus(path)
    path.write_text(
        json.dumps({"_id": "a", "text": "x"}) + "\n" + json.dumps({"_id": "a", "text": "y"}) + "\n"
    )
    with pytest.raises(ValueError, match=r":2: duplicate document id 'a'"):
        load_corpus(path)


def test_malformed_qrels_line(tiny_beir):
    with (tiny_beir / "qrels" / "test.tsv").open("a") as handle:
        handle.write("q1 d2 1\n")
    with pytest.raises(ValueError, match=r"test\.tsv:7: expected 3 tab-separated fields"):
        load_beir(tiny_beir)


def test_empty_corpus(tiny_beir):
    (tiny_beir / "corpus.jsonl").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_beir(tiny_beir)


def test_unknown_ids_in_qrels_are_warned_and_counted(tiny_beir, caplog):
    with (tiny_beir / "qrels" / "test.tsv").open("a") as handle:
        handle.write("q1\tghost-doc\t1\nq1\tother-ghost\t1\nghost-query\td1\t1\n")
    with caplog.at_level(logging.WARNING):
        dataset = load_beir(tiny_beir)
    assert dataset.issues.qrels_unknown_docs == 2
    assert dataset.issues.qrels_unknown_queries == 1
    assert "ghost-doc" not in dataset.qrels["q1"]
    assert "ghost-query" not in dataset.qrels
    assert "missing from corpus.jsonl" in caplog.text and "missing from queries.jsonl" in caplog.text


def test_qrels_with_only_unknown_ids_raise(tiny_beir):
    (tiny_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nqx\tdx\t1\n")
    with pytest.raises(ValueError, match="no usable judgements"):
        load_beir(tiny_beir)


def test_write_beir_round_trip(tiny_beir, tmp_path):
    dataset = load_beir(tiny_beir)
    write_beir(dataset, tmp_path / "copy")
    again = load_beir(tmp_path / "copy")
    assert again.corpus == dataset.corpus
    assert again.queries == dataset.queries
    assert again.qrels == dataset.qrels


def test_scifact_loads(scifact_dir):
    dataset = load_beir(scifact_dir, "test")
    assert len(dataset.corpus) == 5183
    assert len(dataset.queries) == 300
    assert sum(len(j) for j in dataset.qrels.values()) == 339
