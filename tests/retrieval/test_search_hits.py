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
    assert excerpt(text, "zzz", 40).startswith("padding padding") and len(excerpt(text, "zzz", 40)) <= 40
    hit = SearchHit(1, "notes.log#p3", 1.0, 1.0, 1, "", "alpha beta gamma delta", window=(6, 16))
    assert (hit.file, hit.passage, hit.snippet()) == ("notes.log", 3, "beta gamma")
