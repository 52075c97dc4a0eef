"""The windowed hybrid teacher: a text scores by the best of its whole-text and its windows' cosines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ettin_rerank.sentences import sentence_windows
from ettin_rerank.training.teacher import HybridTeacher, WindowedHybridTeacher, load_teacher

FILLER = (
    "The harbour committee met on Tuesday to discuss the new ferry timetable. "
    "Several members asked for more frequent evening crossings in the summer. "
    "The treasurer presented the annual accounts and a small surplus. "
    "A proposal to repaint the pier was postponed until the spring. "
)
ANSWER = "The zorblax alloy melts at exactly 1,234 degrees Celsius."
DOCS = {
    "report": FILLER + ANSWER + " The meeting closed with thanks to the volunteers.",
    "note1": "Zorblax alloy was named after the mining town where its ore was found.",
    "note2": "Zorblax alloy is grey and slightly magnetic.",
    "ferry": FILLER,
}
QUERY = "at what temperature does the zorblax alloy melt?"


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("ETTIN_RERANK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    root.mkdir()
    lines = [json.dumps({"_id": i, "title": "", "text": x}) for i, x in DOCS.items()]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_a_text_scores_at_least_its_best_window_and_at_least_its_whole(dataset):
    windowed = load_teacher(f"hybrid-windows:{dataset}")
    assert isinstance(windowed, WindowedHybridTeacher)
    assert windowed.name == f"hybrid-windows:{dataset}"
    whole = HybridTeacher(dataset)
    pairs = [(QUERY, text) for text in DOCS.values()]
    scores, whole_scores = windowed.score_pairs(pairs), whole.score_pairs(pairs)
    assert np.all(scores >= whole_scores - 1e-6)

    query = windowed.dense.encode_queries([QUERY])[0]
    bm25 = whole.bm25.score_all(QUERY)
    for (_, text), score in zip(pairs, scores, strict=True):
        windows = sentence_windows(text, 3)
        if not windows:  # a text of at most three sentences is its own only window
            np.testing.assert_allclose(score, whole_scores[list(DOCS.values()).index(text)], rtol=1e-6)
            continue
        best = max(float(e @ query) for e in windowed.dense.encode_queries(windows))
        lexical = bm25[list(DOCS.values()).index(text)]
        assert score >= 10 * (best + 0.02 * lexical) - 1e-4


def test_the_answer_inside_a_report_gains_what_the_whole_text_cosine_lost(dataset):
    pairs = [(QUERY, DOCS["report"]), (QUERY, DOCS["ferry"])]
    windowed = WindowedHybridTeacher(dataset).score_pairs(pairs)
    whole = HybridTeacher(dataset).score_pairs(pairs)
    assert windowed[0] > whole[0] + 1.0  # 10 x a clearly better cosine
    assert windowed[1] == pytest.approx(whole[1], abs=0.5)  # text without the answer gains little


def test_scores_are_deterministic_and_do_not_depend_on_batch_neighbours(dataset):
    pairs = [(QUERY, text) for text in DOCS.values()]
    first = WindowedHybridTeacher(dataset).score_pairs(pairs)
    again = WindowedHybridTeacher(dataset)
    one_by_one = np.concatenate([again.score_pairs([pair]) for pair in reversed(pairs)])[::-1]
    np.testing.assert_array_equal(first, WindowedHybridTeacher(dataset).score_pairs(pairs))
    np.testing.assert_allclose(first, one_by_one, rtol=1e-6, atol=1e-6)


def test_added_texts_are_scored_with_the_corpus_statistics(dataset):
    teacher = WindowedHybridTeacher(dataset)
    made = "Zorblax alloy melts at exactly 1,234 degrees Celsius, the committee heard."
    with pytest.raises(ValueError, match="not in the teacher's corpus"):
        teacher.score_pairs([(QUERY, made)])
    teacher.add_texts([made, DOCS["note1"]])  # a corpus text is not added twice
    assert len(teacher.row_of_text) == len(DOCS) + 1 == teacher.embeddings.shape[0]
    score = teacher.score_pairs([(QUERY, made), (QUERY, DOCS["note2"])])
    assert score[0] > score[1]
