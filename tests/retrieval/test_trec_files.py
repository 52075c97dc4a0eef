"""TREC run and qrels files: read as trec_eval reads them, written so they read back exactly."""

from __future__ import annotations

import logging

import pytest

from ettin_rerank.retrieval import load_beir
from ettin_rerank.retrieval.trec import read_qrels, read_run, write_run


def test_read_run_orders_by_score_and_ties_by_the_rank_column(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(
        "q1 Q0 d2 1 3.5 bm25\n"
        "q1 Q0 d9 3 1.25 bm25\n"
        "\n"  # blank lines are skipped
        "q1  Q0\td4 2   3.5 bm25\n"  # any whitespace separates fields; ties with d2, ranked after it
        "q2 Q0 d1 1 -0.5 bm25\n"
        "q1 Q0 d7 4 7.0 bm25\n"  # the best score, whatever its rank column says
    )
    run = read_run(path)
    assert list(run) == ["q1", "q2"]
    assert list(run["q1"].items()) == [("d7", 7.0), ("d2", 3.5), ("d4", 3.5), ("d9", 1.25)]
    assert run["q2"] == {"d1": -0.5}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q1 Q0 d1 1 2.0", r"expected 6 whitespace-separated fields \(qid Q0 docid rank score tag\), got 5"),
        ("q1 0 d1 1", r".*got 4 \(this looks like a qrels line; pass it with --qrels\)"),
        ("q1 Q0 d1 first 2.0 t", "rank 'first' is not an integer"),
        ("q1 Q0 d1 1 high t", "score 'high' is not a number"),
        ("q1 Q0 d1 1 nan t", "score 'nan' is not finite"),
        ("q1 Q0 d0 9 1.0 t", "document 'd0' is listed twice for query 'q1'"),
    ],
)
def test_bad_run_lines_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.trec"
    path.write_text(f"q1 Q0 d0 1 5.0 t\n\n{line}\n")
    with pytest.raises(ValueError, match=f"bad.trec:3: {message}"):
        read_run(path)


def test_empty_and_missing_run_files(tmp_path):
    (tmp_path / "empty.trec").write_text("\n\n")
    with pytest.raises(ValueError, match="empty.trec: the run is empty"):
        read_run(tmp_path / "empty.trec")
    with pytest.raises(FileNotFoundError, match="run file not found: .*nowhere.trec"):
        read_run(tmp_path / "nowhere.trec")


def test_write_run_round_trips_scores_and_order(tmp_path):
    run = {
        "q1": {"d3": 0.1 + 0.2, "d1": 12.625, "d2": 0.30000000000000004, "d4": -1e-9},  # d3 and d2 tie
        "q2": {"x": 1.0},
    }
    path = write_run(run, tmp_path / "out" / "reranked.trec", tag="mine")
    lines = path.read_text().splitlines()
    assert lines[:2] == ["q1 Q0 d1 1 12.625 mine", "q1 Q0 d3 2 0.30000000000000004 mine"]
    assert [line.split()[3] for line in lines] == ["1", "2", "3", "4", "1"]
    back = read_run(path)
    assert back == run  # equal scores, bit for bit
    assert list(back["q1"]) == ["d1", "d3", "d2", "d4"]  # score order; the tie keeps insertion order
    assert read_run(write_run(back, tmp_path / "again.trec")) == back


def test_write_run_refuses_ids_a_trec_file_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="document id 'two words' cannot be written"):
        write_run({"q": {"two words": 1.0}}, tmp_path / "r.trec")
    with pytest.raises(ValueError, match="tag 'my tag' cannot be written"):
        write_run({"q": {"d": 1.0}}, tmp_path / "r.trec", tag="my tag")


def test_read_qrels_ignores_the_second_column_and_keeps_grades(tmp_path):
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 3\nq1 Q0 d2 0\nq2 7 d1 1\nq1 0 d1 3\n")  # a repeated identical line is fine
    assert read_qrels(path) == {"q1": {"d1": 3, "d2": 0}, "q2": {"d1": 1}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
            r"qrels.txt:1: .*got 3 \(this is a BEIR qrels/<split>.tsv",
        ),
        ("q1 0 d1 1\nq1 Q0 d1 1 2.0 bm25\n", r"qrels.txt:2: .*got 6 \(this looks like a run line"),
        ("q1 0 d1 1\nq1 0 d2 high\n", "qrels.txt:2: relevance 'high' is not an integer"),
        ("q1 0 d1 1\nq1 0 d1 2\n", "qrels.txt:2: document 'd1' is judged twice for query 'q1', with 1 and 2"),
        ("\n", "qrels.txt: the qrels file is empty"),
    ],
)
def test_bad_qrels_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "qrels.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_qrels(path)


def test_load_beir_with_a_trec_qrels_file_keeps_judgements_outside_the_corpus(tiny_beir, caplog):
    qrels_file = tiny_beir / "official.qrels"
    # d99 is judged but not in the corpus (a rerank set's corpus is smaller than the official pool);
    # q9 is not a query of the dataset.
    qrels_file.write_text("q1 0 d1 2\nq1 0 d99 3\nq2 0 d3 1\nq9 0 d1 1\n")
    with caplog.at_level(logging.INFO):
        dataset = load_beir(tiny_beir, qrels_file=qrels_file)
    assert dataset.split == "official"
    assert dataset.qrels == {"q1": {"d1": 2, "d99": 3}, "q2": {"d3": 1}}
    assert list(dataset.queries) == ["q1", "q2"]
    assert dataset.issues.qrels_outside_corpus_kept == 1 and dataset.issues.qrels_unknown_docs == 0
    assert dataset.issues.qrels_unknown_queries == 1
    assert dataset.issues.to_dict()["qrels_outside_corpus_kept"] == 1
    assert "kept, as trec_eval keeps them" in caplog.text
    # The dataset's own qrels/<split>.tsv still drops what the corpus lacks.
    assert load_beir(tiny_beir).issues.qrels_outside_corpus_kept == 0


def test_load_beir_with_a_missing_qrels_file(tiny_beir):
    with pytest.raises(FileNotFoundError, match="qrels file not found"):
        load_beir(tiny_beir, qrels_file=tiny_beir / "nope.txt")
