"""The library API as users of sentence-transformers expect it: the default model, batch_size,
any iterable of documents, calibrated scores, and long documents read whole (chunked)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ettin_rerank import Reranker
from ettin_rerank.inference.batching import plan_batches
from ettin_rerank.inference.calibration import Calibration
from ettin_rerank.models import ENV_VAR, bundled_model_dir

FILLER = (
    "The committee reviewed the quarterly budget, the cafeteria menu and the parking rules. "
    "Nobody raised any objection to the new printer on the third floor. "
)
ANSWER = "Credentials such as API keys must be rotated every 90 days from the admin console."
QUERY = "how often should API keys be rotated?"


@pytest.fixture(scope="module")
def bundled() -> Reranker:
    if bundled_model_dir() is None:
        pytest.skip("this install carries no bundled model")
    return Reranker.from_pretrained()


@pytest.fixture(scope="module")
def tiny(tiny_reranker_dir) -> Reranker:
    return Reranker.from_pretrained(tiny_reranker_dir)


def test_from_pretrained_without_a_name_is_the_clis_model(bundled, tiny_reranker_dir, monkeypatch):
    assert bundled.name == str(bundled_model_dir())
    monkeypatch.setenv(ENV_VAR, str(tiny_reranker_dir))
    assert Reranker.from_pretrained().name == str(tiny_reranker_dir)


def test_batch_size_caps_pairs_per_batch_and_keeps_scores(tiny):
    lengths = np.array([5, 50, 7, 9, 400, 3, 3])
    batches = plan_batches(lengths, batch_tokens=10_000, max_pairs=2)
    assert max(len(b) for b in batches) == 2
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    pairs = [("q", f"document number {i} " * (i + 1)) for i in range(9)]
    np.testing.assert_allclose(tiny.predict(pairs, batch_size=2), tiny.predict(pairs), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="batch_size"):
        tiny.predict(pairs, batch_size=0)


def test_documents_may_be_any_iterable_of_strings(tiny):
    documents = ["alpha", "beta gamma", "delta"]
    expected = tiny.rank("q", documents)
    assert tiny.rank("q", (d for d in documents)) == expected
    assert tiny.rank("q", np.array(documents)) == expected
    assert tiny.rank("q", tuple(documents), show_progress_bar=False) == expected
    scores = tiny.predict(np.array([["q", d] for d in documents]))
    np.testing.assert_allclose(scores, [r["score"] for r in sorted(expected, key=lambda r: r["index"])])
    with pytest.raises(TypeError, match="documents"):
        tiny.rank("q", "one string")
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        tiny.rank("q", ["ok", 3])


def test_calibrated_activation_uses_the_models_calibration(tiny, tiny_reranker_dir, tmp_path):
    with pytest.raises(ValueError, match="ettin-rerank calibrate"):
        tiny.predict([("q", "a")], activation="calibrated")
    directory = tmp_path / "calibrated"
    shutil.copytree(tiny_reranker_dir, directory)
    Calibration("platt", {"a": 2.0, "b": -1.0}, {"dataset": "test"}).save(directory)
    calibrated = Reranker.from_pretrained(directory)
    pairs = [("q", "alpha"), ("q", "beta"), ("another", "gamma delta")]
    raw = calibrated.predict(pairs)
    got = calibrated.predict(pairs, activation="calibrated")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(2.0 * raw.astype(np.float64) - 1.0))), atol=1e-6)
    ranked = calibrated.rank("q", ["alpha", "beta"], activation="calibrated")
    assert all(0.0 <= r["score"] <= 1.0 for r in ranked)


def test_ranking_order_comes_from_raw_scores_not_a_saturated_activation(tiny):
    documents = ["alpha", "beta gamma", "delta epsilon zeta"]
    raw_order = [r["index"] for r in tiny.rank("q", documents)]
    assert [r["index"] for r in tiny.rank("q", documents, activation="sigmoid")] == raw_order


LEXICAL_TRAP = "Office keys are handed out at reception; rotate the visitor badges weekly."


def late_answer_document(bundled) -> str:
    tokens_per_filler = len(bundled.tokenizer.tokenize_texts([FILLER])[0])
    long_document = FILLER * (800 // tokens_per_filler + 1) + ANSWER + " " + FILLER * 3
    answer_at = len(bundled.tokenizer.tokenize_texts([long_document[: long_document.index(ANSWER)]])[0])
    assert answer_at > 800 > bundled.max_length
    return long_document


def test_long_documents_chunk_reads_past_the_max_length(bundled):
    long_document = late_answer_document(bundled)
    documents = [
        "API gateways route requests; rate limits protect the backend from bursts.",
        long_document,
        LEXICAL_TRAP,
        FILLER * 2,
    ]
    chunked = bundled.rank(QUERY, documents, long_documents="chunk", return_documents=True)
    by_index = {r["index"]: r for r in chunked}
    start, end = by_index[1]["best_chunk"]
    assert ANSWER in long_document[start:end]
    assert by_index[1]["n_chunks"] > 1
    assert by_index[1]["score"] > max(by_index[0]["score"], by_index[3]["score"])
    assert all(
        r["n_chunks"] == 1 and r["best_chunk"] == [0, len(documents[r["index"]])]
        for r in chunked
        if r["index"] != 1
    )
    truncated = {r["index"]: r["score"] for r in bundled.rank(QUERY, documents)}
    assert by_index[1]["score"] > truncated[1]
    # truncate reports, per result, whether the cut lost text: the tokenizer's own flags
    cut = bundled.encode([(QUERY, d) for d in documents]).truncated
    ranked = bundled.rank(QUERY, documents, top_k=3)
    assert [r["truncated"] for r in ranked] == [bool(cut[r["index"]]) for r in ranked]
    assert cut.tolist() == [False, True, False, False] and "n_chunks" not in ranked[0]
    np.testing.assert_allclose(
        bundled.predict([(QUERY, d) for d in documents], long_documents="chunk"),
        [r["score"] for r in sorted(chunked, key=lambda r: r["index"])],
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="long_documents"):
        bundled.predict([(QUERY, "x")], long_documents="summarize")


# Before stage four the answer's window scored -0.53, below the note (+0.29): stage three embedded
# whole candidates of up to 120 tokens, not single sentences. Stage four's answer windows teach it
# (+3.38 against +0.59; the bundled model, that run averaged with one where stage two is
# replayed: +3.31 against +0.47).
def test_a_late_answer_window_outranks_a_short_lexical_trap(bundled):
    documents = [late_answer_document(bundled), LEXICAL_TRAP]
    assert bundled.rank(QUERY, documents, long_documents="chunk")[0]["index"] == 0
