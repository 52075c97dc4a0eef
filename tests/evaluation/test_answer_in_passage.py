"""Answer in a passage: the alone and embedded candidate lists are built the same way every run."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ettin_rerank import Reranker
from ettin_rerank.evaluation.answer_in_passage import (
    AnswerInPassageSettings,
    build_cases,
    embed_among_sentences,
    filler_pool,
    measure,
    reciprocal_rank,
)
from ettin_rerank.retrieval.beir import BeirDataset, Document
from ettin_rerank.retrieval.bm25 import BM25Index

TOPICS = ["glacier", "violin", "harbour", "orchard", "comet", "bakery", "lantern", "canyon"]


def topic_document(topic: str, number: int) -> str:
    """Six sentences of 6 to 11 words about `topic`; number varies them."""
    return " ".join(
        f"The {topic} number {number} has feature {k} " + "and more detail " * (k % 3) + "here."
        for k in range(6)
    )


@pytest.fixture(scope="module")
def dataset() -> BeirDataset:
    corpus = {
        f"{topic}-{n}": Document(f"{topic}-{n}", "", topic_document(topic, n))
        for topic in TOPICS
        for n in range(5)
    }
    queries = {f"q-{topic}": f"what is special about the {topic} number 0?" for topic in TOPICS}
    qrels = {
        f"q-{topic}": {f"{topic}-0": 2, f"{topic}-1": 1, f"{topic}-2": 0, f"{topic}-3": 0} for topic in TOPICS
    }
    qrels["q-comet"] = {"comet-0": 1}  # judged relevant only: BM25 picks all its negatives
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name="topics")


@pytest.fixture(scope="module")
def bm25(dataset) -> BM25Index:
    return BM25Index.build(dataset.corpus, show_progress=False)


def test_cases_are_the_same_every_run_and_do_not_depend_on_the_sample(dataset, bm25):
    cases = build_cases(dataset, bm25)
    assert cases == build_cases(dataset, bm25)
    assert [c.query_id for c in cases] == list(dataset.qrels)
    sample = build_cases(dataset, bm25, max_queries=3)
    assert len(sample) == 3 and sample == build_cases(dataset, bm25, max_queries=3)
    by_id = {c.query_id: c for c in cases}
    assert all(case == by_id[case.query_id] for case in sample)  # seeded per query, not per run


def test_the_relevant_text_sits_whole_at_a_seeded_random_boundary(dataset, bm25):
    cases = build_cases(dataset, bm25)
    for case in cases:
        assert case.relevant_id == case.query_id[2:] + "-0"  # the highest grade
        assert case.relevant == dataset.corpus[case.relevant_id].text_for_scoring
        assert case.embedded[case.answer_start :].startswith(case.relevant)
        before = case.embedded[: case.answer_start]
        assert before == "" or before.endswith(". ")  # at a sentence boundary
    starts = [c.answer_start for c in cases]
    assert len(set(starts)) > 2  # not one fixed place (first, last)
    other_seed = build_cases(dataset, bm25, settings=AnswerInPassageSettings(seed=7))
    assert [c.embedded for c in other_seed] != [c.embedded for c in cases]


def test_filler_is_about_the_word_count_asked_and_from_other_documents(dataset, bm25):
    settings = AnswerInPassageSettings(filler_words=60, max_sentence_words=11)
    for case in build_cases(dataset, bm25, settings=settings):
        assert case.filler_words == len(case.embedded.split()) - len(case.relevant.split())
        assert (
            settings.filler_words <= case.filler_words < settings.filler_words + settings.max_sentence_words
        )
        filler = case.embedded.replace(case.relevant, " ")
        topic = case.query_id[2:]
        assert topic not in filler  # the query's judged and candidate documents give no filler


def test_negatives_are_judged_non_relevant_first_then_bm25s_unjudged(dataset, bm25):
    cases = {c.query_id: c for c in build_cases(dataset, bm25, settings=AnswerInPassageSettings(negatives=4))}
    glacier = cases["q-glacier"]
    assert set(glacier.negative_ids[:2]) == {"glacier-2", "glacier-3"} and glacier.judged_negatives == 2
    assert glacier.negative_ids[2] == "glacier-4"  # BM25's best unjudged: it shares "glacier"
    assert "glacier-1" not in glacier.negative_ids  # judged relevant: never a negative
    comet = cases["q-comet"]
    assert comet.judged_negatives == 0 and comet.negative_ids[0] != "comet-0"
    assert all(len(c.negatives) == 4 and c.relevant_id not in c.negative_ids for c in cases.values())
    assert glacier.alone_list[1:] == glacier.embedded_list[1:] == list(glacier.negatives)


def test_embedding_fails_clearly_when_no_sentence_may_be_used(dataset):
    pool = filler_pool(dataset, AnswerInPassageSettings())
    every = {doc_id for doc_id, _ in pool}
    with pytest.raises(ValueError, match="too few usable sentences"):
        embed_among_sentences("answer.", pool, every, random.Random(0), filler_words=10)


def test_a_tie_with_a_negative_counts_against_the_relevant_text():
    assert reciprocal_rank(1.0, np.array([0.0, 0.5])) == 1.0
    assert reciprocal_rank(0.0, np.array([0.0, 0.0, -1.0])) == pytest.approx(1 / 3)
    assert reciprocal_rank(0.2, np.array([0.9, 0.1])) == 0.5


def test_measure_ranks_each_list_by_the_scorers_chunked_scores(dataset, bm25, tiny_reranker_dir):
    model = Reranker.from_pretrained(tiny_reranker_dir)
    cases = build_cases(dataset, bm25, max_queries=4)
    score = measure(cases, model)
    alone, embedded = [], []
    for case in cases:
        texts = [case.relevant, case.embedded, *case.negatives]
        scores = model.predict([(case.query, t) for t in texts], long_documents="chunk")
        alone.append(1 / (1 + np.sum(scores[2:] >= scores[0])))
        embedded.append(1 / (1 + np.sum(scores[2:] >= scores[1])))
    assert score.queries == 4
    assert score.mrr_alone == pytest.approx(np.mean(alone), abs=1e-9)
    assert score.mrr_embedded == pytest.approx(np.mean(embedded), abs=1e-9)
    assert score.ratio == pytest.approx(score.mrr_embedded / score.mrr_alone)
