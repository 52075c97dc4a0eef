"""`SearchIndex.search` with the engine: long documents chunked or truncated, windows as snippets."""

from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.retrieval import SearchIndex
from ettin_rerank.retrieval.beir import Document
from ettin_rerank.retrieval.index import SearchHit, excerpt, score_candidates


@pytest.fixture(scope="module")
def tiny(tiny_reranker_dir):
    from ettin_rerank import Reranker

    return Reranker.from_pretrained(tiny_reranker_dir, max_length=64)


def corpus_with_a_long_document() -> dict[str, Document]:
    long_text = " ".join(f"filler sentence number {i} about nothing much." for i in range(60))
    return {
        "long.md": Document("long.md", "Handbook", long_text + " The tea kettle answer is here."),
        "short.txt": Document("short.txt", "", "tea kettle notes"),
    }


def test_long_documents_are_chunked_or_truncated_and_reported(tiny):
    index = SearchIndex.build(corpus_with_a_long_document(), show_progress=False)
    chunked = {hit.doc_id: hit for hit in index.search("tea kettle", reranker=tiny)}
    long_hit = chunked["long.md"]
    assert long_hit.n_chunks > 1 and not long_hit.truncated
    start, end = long_hit.window
    assert 0 < start < end <= len(long_hit.text)  # a window inside the text, the title's offset removed
    assert chunked["short.txt"].n_chunks == 1 and chunked["short.txt"].window is None

    # The window's score is what `rank` gives the same documents: one mechanism, the library's.
    texts = [f"Handbook {corpus_with_a_long_document()['long.md'].text}", "tea kettle notes"]
    ranked = {r["index"]: r for r in tiny.rank("tea kettle", texts, long_documents="chunk")}
    assert long_hit.score == pytest.approx(ranked[0]["score"], abs=1e-5)
    assert ranked[0]["best_chunk"] == [start + len("Handbook "), end + len("Handbook ")]

    truncated = {
        hit.doc_id: hit for hit in index.search("tea kettle", reranker=tiny, long_documents="truncate")
    }
    assert truncated["long.md"].truncated and truncated["long.md"].n_chunks == 1
    assert not truncated["short.txt"].truncated
    assert truncated["long.md"].to_dict()["truncated"] is True
    with pytest.raises(ValueError, match="long_documents must be one of"):
        index.search("tea", reranker=tiny, long_documents="split")


def test_a_plain_pair_scorer_still_reranks():
    class Lengths:
        name = "lengths"

        def score_pairs(self, pairs):
            return np.array([len(d) for _, d in pairs], dtype=np.float32)

    scored = score_candidates(Lengths(), "q", ["a", "bbb"])
    assert scored.scores.tolist() == [1.0, 3.0] and scored.n_chunks == [None, None]


def test_the_snippet_shows_where_the_query_words_are():
    text = " ".join(["padding"] * 100) + " the kettle must be descaled monthly " + " ".join(["tail"] * 100)
    shown = excerpt(text, "how to descale the kettle", 80)
    assert shown.startswith("... ") and "kettle must be descaled" in shown and len(shown) <= 80
    assert excerpt("short text", "anything", 80) == "short text"
    # words the first stage ignores do not make a match: the answer, not a stretch of "the"s
    filler = " ".join(["the report covers the budget"] * 60) + " The zorblax alloy melts at 1,234 degrees."
    assert "zorblax alloy melts" in excerpt(filler, "at what temperature does the zorblax alloy melt?", 80)
    assert excerpt(text, "zzz", 40).startswith("padding padding") and len(excerpt(text, "zzz", 40)) <= 40
    hit = SearchHit(1, "notes.log#p3", 1.0, 1.0, 1, "", "alpha beta gamma delta", window=(6, 16))
    assert (hit.file, hit.passage, hit.snippet()) == ("notes.log", 3, "beta gamma")


def kettle_notes(count: int) -> dict[str, Document]:
    """`count` files that all match "kettle", each with its own text (no two snippets alike)."""
    return {
        f"note{i:02d}.txt": Document(
            f"note{i:02d}.txt",
            "",
            f"Note {i}: the kettle " + "needs descaling " * (i % 5 + 1) + f"on day {i}.",
        )
        for i in range(count)
    }


def test_a_time_budget_reranks_the_first_candidates_and_keeps_the_rest_in_first_stage_order(tiny):
    index = SearchIndex.build(kettle_notes(30), show_progress=False)
    first_stage = [hit.doc_id for hit in index.search("kettle descaling", n=30)]
    assert len(first_stage) == 30

    # The first batch always runs (it measures the speed); a budget it uses up stops there.
    results = index.search("kettle descaling", n=30, reranker=tiny, budget_s=1e-6)
    assert (results.candidates, results.reranked, results.budget_s) == (30, 8, 1e-6)
    assert results.rerank_seconds > 0
    reranked, rest = results[:8], results[8:]
    assert all(hit.reranked and hit.probability is not None for hit in reranked)
    assert {hit.first_stage_rank for hit in reranked} == set(range(1, 9))  # the first 8, in first-stage order
    assert [hit.score for hit in reranked] == sorted((hit.score for hit in reranked), reverse=True)
    assert [hit.doc_id for hit in rest] == first_stage[8:]  # below, in first-stage order
    assert not any(hit.reranked or hit.probability is not None for hit in rest)
    assert [hit.rank for hit in results] == list(range(1, 31))

    generous = index.search("kettle descaling", n=30, reranker=tiny, budget_s=120.0)
    assert generous.reranked == 30 and all(hit.reranked for hit in generous)
    for no_limit in (0, None):
        assert index.search("kettle descaling", reranker=tiny, budget_s=no_limit).reranked == 30


def test_a_depth_reranks_exactly_that_many(tiny):
    index = SearchIndex.build(kettle_notes(30), show_progress=False)
    results = index.search("kettle descaling", n=30, reranker=tiny, depth=13, budget_s=1e-6)
    assert (results.reranked, results.depth, results.budget_s) == (13, 13, None)  # the depth overrides
    assert {hit.first_stage_rank for hit in results if hit.reranked} == set(range(1, 14))
    assert index.search("kettle", reranker=tiny, depth=20, top_k=5).reranked == 20  # retrieves at least depth
    for bad, message in [({"depth": 0}, "depth must be at least 1"), ({"budget_s": -1.0}, "budget must be")]:
        with pytest.raises(ValueError, match=message):
            index.search("kettle", reranker=tiny, **bad)


def test_one_result_per_file_its_best_passage_with_its_place():
    from ettin_rerank.config.retrieval import PassageSettings

    corpus = {
        "log.txt#p1": Document("log.txt#p1", "", "boot ok disk ok fan ok cpu ok net ok"),
        "log.txt#p2": Document("log.txt#p2", "", "net ok pump seventeen valve failed at night shift"),
        "log.txt#p3": Document("log.txt#p3", "", "night shift ended valve replaced pump restarted fine"),
        "memo.txt": Document("memo.txt", "", "the pump valve order was approved"),
    }
    index = SearchIndex.build(corpus, show_progress=False, passages=PassageSettings(words=10, overlap=2))
    per_file = index.search("pump valve failed night")
    assert [hit.doc_id for hit in per_file] == ["log.txt#p2", "memo.txt"]  # log.txt's best passage only
    assert (per_file[0].file, per_file[0].passage, per_file[0].words) == ("log.txt", 2, (9, 17))
    assert per_file[0].to_dict()["words"] == [9, 17] and per_file[1].words is None
    every = index.search("pump valve failed night", one_per_file=False)
    assert sorted(hit.doc_id for hit in every) == [
        "log.txt#p2",
        "log.txt#p3",
        "memo.txt",
    ]  # p1 shares no word
    assert next(hit for hit in every if hit.doc_id == "log.txt#p3").words == (17, 24)


def test_no_two_results_show_the_same_snippet():
    text = "Descale the kettle with white vinegar once a month."
    corpus = {
        "kitchen.txt": Document("kitchen.txt", "", text),
        "backup/kitchen.txt": Document("backup/kitchen.txt", "", text),  # the same file copied
        "other.txt": Document("other.txt", "", "The kettle is in the cupboard."),
    }
    index = SearchIndex.build(corpus, show_progress=False)
    for one_per_file in (True, False):
        hits = index.search("kettle vinegar", one_per_file=one_per_file)
        assert len(hits) == 2 and len({hit.snippet() for hit in hits}) == 2


def test_reranked_hits_carry_a_probability_and_a_label(tiny):
    from ettin_rerank.inference.scores import apply_activation
    from ettin_rerank.retrieval.index import relevance_label

    index = SearchIndex.build(kettle_notes(5), show_progress=False)
    hits = index.search("kettle descaling", reranker=tiny)
    scores = np.array([hit.score for hit in hits], dtype=np.float32)
    expected = apply_activation(scores, tiny.probability_activation, tiny.calibration)
    assert [hit.probability for hit in hits] == pytest.approx(expected.tolist())
    assert all(hit.relevance == relevance_label(hit.probability) for hit in hits)
    assert hits[0].to_dict()["probability"] == hits[0].probability
    assert hits[0].to_dict()["relevance"] in {"high", "medium", "low"}
    assert [relevance_label(p) for p in (0.9, 0.5, 0.49, 0.2, 0.19)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
    ]

    class Lengths:  # a scorer that does not say how its scores read as probabilities
        name = "lengths"

        def score_pairs(self, pairs):
            return np.array([len(d) for _, d in pairs], dtype=np.float32)

    plain = index.search("kettle descaling", reranker=Lengths())
    assert all(hit.reranked and hit.probability is None and hit.relevance is None for hit in plain)


def test_a_process_that_loads_a_saved_index_again_reuses_it_until_it_is_rewritten(tmp_path):
    first = {
        "a": Document("a", "", "the kettle is descaled with vinegar"),
        "b": Document("b", "", "ferns need water"),
    }
    SearchIndex.build(first, show_progress=False).save(tmp_path / "index")
    loaded = SearchIndex.load(tmp_path / "index")
    again = SearchIndex.load(tmp_path / "index")
    assert again is not loaded and again.corpus is loaded.corpus  # one parse, each caller its own object
    assert list(again.retrieve("kettle", top_k=1)) == ["a"]

    second = {"c": Document("c", "", "the kettle whistles when the water boils")}
    SearchIndex.build(second, show_progress=False).save(tmp_path / "index")  # rewritten in place
    rewritten = SearchIndex.load(tmp_path / "index")
    assert list(rewritten.corpus) == ["c"] and list(rewritten.retrieve("kettle", top_k=5)) == ["c"]
