import json
import random

from ettin_rerank.retrieval.beir import load_beir
from ettin_rerank.training.pseudo_queries import (
    STOPWORDS,
    PseudoQuerySettings,
    cloze_query,
    write_pseudo_query_dataset,
)


def write_corpus(directory, documents):
    directory.mkdir(parents=True)
    with open(directory / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc_id, (title, text) in documents.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")


def test_cloze_query_is_in_order_content_words_of_one_sentence():
    text = "The cat sat on the mat. Boundary layer transition on swept wings was measured in a wind tunnel."
    settings = PseudoQuerySettings(min_words=3, max_words=5)
    for seed in range(20):
        query = cloze_query(text, random.Random(seed), settings)
        words = query.split()
        assert 3 <= len(words) <= 5
        assert not {w.lower() for w in words} & STOPWORDS
        assert query in "Boundary layer transition swept wings measured wind tunnel" or query in "cat sat mat"


def test_unpunctuated_text_is_cut_into_windows():
    text = " ".join(f"word{i} term{i}" for i in range(40))  # no sentence punctuation at all (Vaswani)
    query = cloze_query(text, random.Random(0), PseudoQuerySettings(window_words=10))
    assert query is not None and 3 <= len(query.split()) <= 7


def test_too_short_documents_give_no_query():
    assert cloze_query("a the of", random.Random(0), PseudoQuerySettings()) is None


def test_dataset_is_a_beir_training_split_judging_each_source_document(tmp_path):
    documents = {
        f"d{i}": ("", f"Document {i} discusses supersonic flow number {i} over delta wings and shock waves.")
        for i in range(30)
    }
    documents["empty"] = ("", "of the")
    corpus_dir = tmp_path / "cranfield"
    write_corpus(corpus_dir, documents)
    out = write_pseudo_query_dataset(corpus_dir, tmp_path / "pseudo", PseudoQuerySettings(queries=20, seed=3))
    dataset = load_beir(out, "train")
    assert 0 < len(dataset.queries) <= 20
    assert all(query_id.startswith("cranfield:pq") for query_id in dataset.queries)
    for judged in dataset.qrels.values():
        assert list(judged.values()) == [1]
        assert next(iter(judged)) in documents
    again = write_pseudo_query_dataset(corpus_dir, tmp_path / "pseudo", PseudoQuerySettings(queries=5))
    assert load_beir(again, "train").queries == dataset.queries  # a finished output is kept, not redone
