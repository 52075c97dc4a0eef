"""Stage four's groups: the answer whole inside realistic passages, negatives that lack it."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from ettin_rerank.inference.tokenization import PairTokenizer
from ettin_rerank.retrieval.beir import load_beir
from ettin_rerank.training.answer_windows import (
    AnswerSource,
    AnswerWindowSettings,
    HostPassages,
    answer_group,
    content_words,
    host_passage,
    normalise_space,
    passages_score_as_their_answer,
    without_answer,
    write_answer_window_dataset,
)
from ettin_rerank.training.io import TRAIN_COLUMNS, read_table
from ettin_rerank.training.mining import mine_candidates
from ettin_rerank.training.pseudo_queries import (
    PseudoQuerySettings,
    read_answer_sentences,
    write_pseudo_query_dataset,
)
from ettin_rerank.training.teacher import WindowedHybridTeacher

TOPICS = [
    ["harbour", "ferry", "pier", "crossing", "captain", "tide"],
    ["alloy", "furnace", "melting", "ingot", "foundry", "smelter"],
    ["violin", "orchestra", "rehearsal", "conductor", "symphony", "concert"],
    ["glacier", "moraine", "crevasse", "icefield", "meltwater", "summit"],
    ["orchard", "apples", "pruning", "blossom", "harvest", "cider"],
    ["compiler", "parser", "bytecode", "linker", "optimizer", "runtime"],
]


def sentence(words: list[str], rng: random.Random) -> str:
    picked = [rng.choice(words) for _ in range(rng.randint(9, 14))]
    return " ".join(picked).capitalize() + "."


def write_corpus(directory, documents_per_topic: int = 3, seed: int = 0) -> None:
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    lines = []
    for topic, words in enumerate(TOPICS):
        for i in range(documents_per_topic):
            text = " ".join(sentence(words + ["the", "of"], rng) for _ in range(rng.randint(6, 12)))
            lines.append(json.dumps({"_id": f"t{topic}d{i}", "title": "", "text": text}))
    (directory / "corpus.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A pseudo-query dataset over a tiny corpus (answer sentences recorded) and its BM25 candidates."""
    monkeypatch.setenv("ETTIN_RERANK_CACHE", str(tmp_path / "cache"))
    write_corpus(tmp_path / "corpus")
    dataset = write_pseudo_query_dataset(
        tmp_path / "corpus", tmp_path / "pseudo", PseudoQuerySettings(queries=12, title_share=0.0)
    )
    candidates = mine_candidates(
        dataset, tmp_path / "candidates", first_stage="bm25", depth=8, show_progress=False
    )
    return AnswerSource(dataset, candidates)


def test_the_recorded_sentence_is_the_one_each_query_was_cut_from(source):
    dataset = load_beir(source.dataset_dir, "train")
    answers = read_answer_sentences(source.dataset_dir)
    assert set(answers) == set(dataset.queries)
    for query_id, sentence in answers.items():
        (doc_id,) = dataset.qrels[query_id]
        assert sentence in dataset.corpus[doc_id].text
        assert content_words(dataset.queries[query_id]) <= content_words(sentence)


def test_a_passage_is_contiguous_sentences_of_the_asked_length():
    sentences = [f"Sentence {i} has " + " ".join(["word"] * (i % 7 + 3)) + "." for i in range(40)]
    for seed in range(20):
        passage = host_passage(sentences, random.Random(seed), 80, 180)
        assert passage is not None and 80 <= sum(len(s.split()) for s in passage) <= 180
        start = sentences.index(passage[0])
        assert passage == sentences[start : start + len(passage)]
    assert host_passage(sentences[:3], random.Random(0), 80, 180) is None
    tokens = [2 * len(s.split()) for s in sentences]
    for seed in range(20):
        passage = host_passage(sentences, random.Random(seed), 80, 180, tokens, max_tokens=200)
        assert passage is not None and sum(2 * len(s.split()) for s in passage) <= 200
    assert host_passage(sentences, random.Random(0), 80, 180, tokens, max_tokens=150) is None


def test_without_answer_cuts_out_the_span_only():
    document = "First  sentence here. The answer is 42.\nLast sentence here."
    assert without_answer(document, "The answer is 42.") == "First sentence here. Last sentence here."
    assert without_answer(document, "Not inside.") is None


def test_each_group_holds_the_answer_whole_in_passages_and_negatives_that_lack_it(source):
    dataset = load_beir(source.dataset_dir, "train")
    answers = read_answer_sentences(source.dataset_dir)
    candidates = {}
    for row in read_table(source.candidates_dir, ("query_id",), "test").to_pylist():
        candidates.setdefault(row["query_id"], []).append(row)
    settings = AnswerWindowSettings()
    hosts = HostPassages(dataset, settings)
    for query_id, query in dataset.queries.items():
        (doc_id,) = dataset.qrels[query_id]
        answer = answers[query_id]
        source_pair = (doc_id, dataset.corpus[doc_id].text_for_scoring)
        group = answer_group(
            query_id, query, answer, source_pair, candidates[query_id], hosts, random.Random(3), settings
        )
        again = answer_group(
            query_id, query, answer, source_pair, candidates[query_id], hosts, random.Random(3), settings
        )
        assert group == again  # seeded
        kinds = [row["selection"] for row in group]
        assert kinds[0] == "answer" and group[0]["document"] == answer
        assert kinds.count("answer-passage") == settings.answer_passages
        assert kinds.count("without-answer") == 1 and kinds.count("note") >= 1
        mined = {c["doc_id"] for c in candidates[query_id]}
        for row in group:
            if row["selection"] == "answer-passage":
                assert answer in row["document"] and row["label"] == 1
                host_words = len(row["document"].split()) - len(answer.split())
                assert settings.host_min_words <= host_words <= settings.host_max_words
                host_id = row["doc_id"].split("@answer-in:")[1].split("#")[0]
                assert host_id != doc_id and host_id not in mined  # another document, not a candidate
                host_text = normalise_space(dataset.corpus[host_id].text_for_scoring)
                for part in row["document"].split(answer):
                    assert normalise_space(part) in host_text  # contiguous sentences of that one document
            elif row["selection"] in ("without-answer", "note"):
                assert normalise_space(answer) not in normalise_space(row["document"])
                assert row["label"] == 0
            if row["selection"] == "note":
                assert content_words(query) & content_words(row["document"])
                assert len(row["document"].split()) <= settings.note_max_words
                assert not row["doc_id"].startswith(f"{doc_id}@")
        ordinary = [row for row in group if row["selection"] == "ordinary"]
        assert doc_id in {row["doc_id"] for row in ordinary} and len(ordinary) <= settings.ordinary


def test_the_dataset_is_scored_by_the_windowed_teacher_resumed_and_read_by_distill(
    source, tmp_path, bert_tokenizer_dir
):
    settings = AnswerWindowSettings(max_length=192, heldout_queries=2)
    out = write_answer_window_dataset([source], tmp_path / "answers", bert_tokenizer_dir, settings)
    train = read_table(out / "train", TRAIN_COLUMNS, "distill")
    heldout = read_table(out / "heldout", TRAIN_COLUMNS, "distill")
    assert len(set(heldout.column("query_id").to_pylist())) == 2
    assert set(train.column("teacher").to_pylist()) == {f"hybrid-windows:{source.dataset_dir}"}
    rows = train.to_pylist() + heldout.to_pylist()
    teacher = WindowedHybridTeacher(source.dataset_dir)
    teacher.add_texts([row["document"] for row in rows])
    scores = teacher.score_pairs([(row["query"], row["document"]) for row in rows])
    expected = passages_score_as_their_answer(rows, scores)  # the teacher's, passages raised to their answer
    np.testing.assert_allclose([row["teacher_score"] for row in rows], expected, rtol=1e-5, atol=1e-5)
    kinds = {row["selection"] for row in rows}
    assert kinds == {"answer", "answer-passage", "without-answer", "note", "ordinary"}
    tokenizer = PairTokenizer.from_dir(bert_tokenizer_dir, 192, with_token_type_ids=False)
    for row in rows:
        if row["selection"] == "answer-passage":  # the student reads the passage whole, answer included
            pair = tokenizer.encode_pairs([(row["query"], row["document"])], 10_000).input_ids[0]
            assert len(pair) <= settings.max_length

    shard = out / "train" / "part-00000.parquet"
    written = shard.stat().st_mtime_ns
    write_answer_window_dataset([source], tmp_path / "answers", bert_tokenizer_dir, settings)
    assert shard.stat().st_mtime_ns == written  # kept on a rerun with the same settings
    with pytest.raises(ValueError, match="other settings"):
        write_answer_window_dataset(
            [source], tmp_path / "answers", bert_tokenizer_dir, AnswerWindowSettings(max_length=192, notes=1)
        )


def test_an_answer_inside_a_passage_scores_at_least_as_the_answer_alone():
    rows = [
        {"query_id": "q1", "selection": "answer"},
        {"query_id": "q1", "selection": "answer-passage"},
        {"query_id": "q1", "selection": "without-answer"},
        {"query_id": "q2", "selection": "answer"},
        {"query_id": "q2", "selection": "answer-passage"},
    ]
    scores = np.array([9.0, 6.0, 6.5, 3.0, 4.0], dtype=np.float32)
    targets = passages_score_as_their_answer(rows, scores)
    assert targets.tolist() == [9.0, 9.0, 6.5, 3.0, 4.0]  # raised to q1's answer; q2's passage already above
    assert scores.tolist() == [9.0, 6.0, 6.5, 3.0, 4.0]  # the teacher's own scores are left as they were


def test_a_source_can_ask_for_its_own_number_of_queries(source, tmp_path, bert_tokenizer_dir):
    settings = AnswerWindowSettings(max_length=192, queries=10, heldout_queries=1)
    fewer = dataclasses.replace(source, queries=4)  # the build gives SciFact's labelled queries their own
    out = write_answer_window_dataset([fewer], tmp_path / "answers", bert_tokenizer_dir, settings)
    tables = [read_table(out / part, TRAIN_COLUMNS, "distill") for part in ("train", "heldout")]
    assert sum(len(set(t.column("query_id").to_pylist())) for t in tables) == 4
    with pytest.raises(ValueError, match="other settings"):  # the count is part of what a shard records
        write_answer_window_dataset([source], tmp_path / "answers", bert_tokenizer_dir, settings)
