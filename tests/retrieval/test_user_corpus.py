from __future__ import annotations

import logging

import pytest

from ettin_rerank.retrieval import SearchIndex, load_text_directory, load_user_corpus


@pytest.fixture
def notes(tmp_path):
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "kettle.txt").write_text("Descale the kettle with vinegar once a month.\n")
    (root / "sub" / "garden.md").write_text("# Garden notes\nWater the tomatoes early in the morning.\n")
    (root / "bike.md").write_text("Pump the bicycle tyres to the pressure printed on the sidewall.")
    (root / "empty.txt").write_text("   \n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return root


def test_text_directory_one_document_per_file(notes, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = load_text_directory(notes)
    assert list(corpus) == ["bike.md", "kettle.txt", "sub/garden.md"]
    assert corpus["sub/garden.md"].title == "Garden notes"
    assert corpus["sub/garden.md"].text == "Water the tomatoes early in the morning."
    assert corpus["kettle.txt"].title == ""
    assert "skipped 2 of 5 files: 1 empty (empty.txt); 1 binary (image.png)" in caplog.text


def test_user_corpus_errors(tmp_path):
    (tmp_path / "only.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(
        ValueError, match=r"no readable documents in .*: skipped 1 of 1 files: 1 binary \(only.png\)"
    ):
        load_user_corpus(tmp_path)
    with pytest.raises(FileNotFoundError, match="corpus not found"):
        load_user_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="1 binary"):
        load_user_corpus(tmp_path / "only.png")  # one file is read like a folder of one
    (tmp_path / "latin.txt").write_bytes(b"\xe9t\xe9 \xe0 la plage")
    assert load_user_corpus(tmp_path / "latin.txt")["latin.txt"].text == "\u00e9t\u00e9 \u00e0 la plage"
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(ValueError, match="it holds no files"):
        load_text_directory(empty)


def test_beir_corpus_accepted(tiny_beir):
    assert len(load_user_corpus(tiny_beir)) == 8
    assert len(load_user_corpus(tiny_beir / "corpus.jsonl")) == 8


def test_search_index_round_trip(notes, tmp_path):
    index = SearchIndex.build(load_user_corpus(notes), show_progress=False)
    index.save(tmp_path / "idx")
    loaded = SearchIndex.load(tmp_path / "idx")
    hits = loaded.search("how to water tomatoes", n=2)
    assert hits[0].doc_id == "sub/garden.md" and hits[0].title == "Garden notes"
    assert hits[0].score == hits[0].first_stage_score
    assert len(hits) == 1  # no other document shares a term
    assert hits[0].to_dict()["snippet"].startswith("Water the tomatoes")
    with pytest.raises(ValueError, match="query is empty"):
        loaded.search("  ")
    with pytest.raises(FileNotFoundError, match="ettin-rerank index"):
        SearchIndex.load(tmp_path)


def test_search_reranks_candidates(tmp_path):
    import numpy as np

    class PreferLonger:
        name = "prefer-longer"

        def score_pairs(self, pairs):
            return np.array([len(d) for _, d in pairs], dtype=np.float32)

    corpus = load_user_corpus(
        _write(tmp_path, {"a.txt": "tea", "b.txt": "tea tea tea is tea and more tea for me"})
    )
    index = SearchIndex.build(corpus, show_progress=False)
    plain = [h.doc_id for h in index.search("tea", n=2)]
    reranked = index.search("tea", n=2, reranker=PreferLonger())
    assert [h.doc_id for h in reranked] == ["b.txt", "a.txt"]
    assert [h.first_stage_rank for h in reranked] == [plain.index("b.txt") + 1, plain.index("a.txt") + 1]
    assert reranked[0].score == float(len("tea tea tea is tea and more tea for me"))
    assert set(plain) == {"a.txt", "b.txt"}


def _write(root, files):
    root = root / "docs"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root
