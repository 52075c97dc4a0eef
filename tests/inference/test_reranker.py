"""Reranker API behaviour: ranking, tie rule, activations, bad input, loading errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ettin_rerank import Reranker
from ettin_rerank.inference.scores import ranked_results
from ettin_rerank.modeling.loading import CheckpointError


@pytest.fixture(scope="module")
def reranker(tiny_reranker_dir):
    return Reranker.from_pretrained(tiny_reranker_dir)


def test_predict_returns_float32_in_input_order(reranker):
    pairs = [("q", "alpha"), ("q", "beta gamma"), ("another query", "alpha")]
    scores = reranker.predict(pairs)
    assert scores.dtype == np.float32 and scores.shape == (3,)
    reversed_scores = reranker.predict(pairs[::-1])
    np.testing.assert_allclose(reversed_scores[::-1], scores, atol=1e-5)


def test_sigmoid_is_fp32_sigmoid_of_logits(reranker):
    pairs = [("q", "alpha"), ("q", "beta")]
    logits = reranker.predict(pairs)
    probabilities = reranker.predict(pairs, activation="sigmoid")
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        reranker.predict(pairs, activation="softmax")


def test_rank_sorts_by_score_and_indexes_the_callers_list(reranker):
    documents = ["the giant Ettin", "", "a reranker", "the giant Ettin", "something else entirely"]
    results = reranker.rank("who is ettin?", documents, return_documents=True)
    scores = reranker.predict([("who is ettin?", d) for d in documents])
    assert sorted(r["index"] for r in results) == list(range(len(documents)))
    assert [r["score"] for r in results] == sorted(scores.tolist(), reverse=True)
    for item in results:
        assert item["document"] == documents[item["index"]]
        assert item["score"] == pytest.approx(float(scores[item["index"]]))
    top = reranker.rank("who is ettin?", documents, top_k=2)
    assert [r["index"] for r in top] == [r["index"] for r in results[:2]] and "document" not in top[0]


def test_ties_are_broken_by_index():
    results = ranked_results(np.array([1.0, 3.0, 3.0, 2.0, 3.0], dtype=np.float32))
    assert [r["index"] for r in results] == [1, 2, 4, 3, 0]


def test_empty_inputs(reranker):
    assert reranker.rank("query", []) == []
    assert reranker.predict([]).shape == (0,)
    assert np.isfinite(reranker.predict([("", "")])).all()


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("q", "ok"), ("q", 3)], r"pairs\[1\]\[1\]"),
        ([(None, "doc")], r"pairs\[0\]\[0\]"),
        ([("only one",)], r"pairs\[0\]"),
        ("not a list", "pairs must be"),
    ],
)
def test_non_strings_raise_type_error_naming_the_position(reranker, pairs, message):
    with pytest.raises(TypeError, match=message):
        reranker.predict(pairs)


def test_rank_rejects_non_string_documents(reranker):
    with pytest.raises(TypeError, match=r"documents\[2\]"):
        reranker.rank("q", ["a", "b", 7])


def test_missing_file_is_named(tiny_reranker_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_reranker_dir, broken)
    (broken / "3_LayerNorm" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="3_LayerNorm"):
        Reranker.from_pretrained(broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        Reranker.from_pretrained(broken)


def test_corrupt_weights_are_reported(tiny_reranker_dir, tmp_path):
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_reranker_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        Reranker.from_pretrained(broken)


def test_unknown_architecture_lists_supported(tiny_reranker_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_reranker_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "llama"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="supported: .*ModernBertForSequenceClassification"):
        Reranker.from_pretrained(other)


def test_hub_id_offline_fails_fast_with_advice():
    # conftest sets HF_HUB_OFFLINE=1: nothing is downloaded, the id must fail at once with advice.
    hub_id = "cross-encoder/ettin-reranker-17m-v1"
    with pytest.raises(FileNotFoundError, match=rf"{hub_id}.*local path"):
        Reranker.from_pretrained(hub_id)


def test_missing_local_directory():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Reranker.from_pretrained("./no/such/model/dir")


def test_max_length_beyond_positions_is_refused(tiny_reranker_dir):
    with pytest.raises(ValueError, match="max_length"):
        Reranker.from_pretrained(tiny_reranker_dir, max_length=100_000)


def test_random_reranker_loads_identically_in_sentence_transformers(tiny_reranker_dir):
    import torch
    from sentence_transformers import CrossEncoder

    pairs = [("q", "alpha " * 150), ("what", "a b c"), ("x", "")]
    ours = Reranker.from_pretrained(tiny_reranker_dir).predict(pairs)
    theirs = CrossEncoder(str(tiny_reranker_dir), activation_fn=torch.nn.Identity()).predict(pairs)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_a_lent_model_is_used_as_given(tiny_reranker_dir):
    """The constructor never moves, casts or quantizes the caller's model, nor sets threads."""
    import torch

    from ettin_rerank.modeling.loading import load_checkpoint

    checkpoint = load_checkpoint(tiny_reranker_dir)
    model = checkpoint.model.eval()
    before = {name: (p.dtype, p.device, p.data_ptr()) for name, p in model.named_parameters()}
    threads = torch.get_num_threads()
    loaded = Reranker.from_pretrained(tiny_reranker_dir)
    lent = Reranker(model, loaded.tokenizer, attention="eager")
    assert {name: (p.dtype, p.device, p.data_ptr()) for name, p in model.named_parameters()} == before
    assert torch.get_num_threads() == threads
    assert (lent.device.type, lent.dtype, lent.attention, lent.quantize) == (
        "cpu",
        torch.float32,
        "eager",
        None,
    )
    pairs = [("q", "alpha beta"), ("another query", "gamma")]
    np.testing.assert_allclose(lent.predict(pairs), loaded.predict(pairs), atol=1e-5)


def test_a_half_precision_head_is_refused_with_advice(tiny_reranker_dir):
    import torch

    from ettin_rerank.modeling.loading import load_checkpoint

    checkpoint = load_checkpoint(tiny_reranker_dir)
    checkpoint.model.head.to(torch.bfloat16)
    tokenizer = Reranker.from_pretrained(tiny_reranker_dir).tokenizer
    with pytest.raises(ValueError, match="prepare_model"):
        Reranker(checkpoint.model, tokenizer)
    with pytest.raises(ValueError, match="attention backend"):
        Reranker.from_pretrained(tiny_reranker_dir, attention="no-such-kernel")


def test_score_encoded_scores_one_given_batch_like_predict(reranker):
    pairs = [("q", "alpha"), ("q", "beta gamma " * 50), ("another query", "alpha")]
    np.testing.assert_allclose(
        reranker.score_encoded(reranker.encode(pairs)), reranker.predict(pairs), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(reranker.score_pairs(pairs), reranker.predict(pairs), atol=0, rtol=0)
    assert reranker.score_encoded(reranker.encode([])).shape == (0,)


def test_tokenizer_calls_do_not_share_truncation_state(reranker):
    """Texts alone are never truncated, pairs always are, whatever ran before and on any thread."""
    from concurrent.futures import ThreadPoolExecutor

    tokenizer = reranker.tokenizer
    long_text = "word " * (tokenizer.max_length + 100)
    pairs = [("query", long_text)]
    alone = tokenizer.count_tokens([long_text])[0]
    assert alone > tokenizer.max_length
    short = tokenizer.encode_pairs(pairs, max_length=32)
    assert len(short.input_ids[0]) == 32 and short.truncated[0]
    assert len(tokenizer.tokenize_texts([long_text])[0]) == alone

    def work(i: int) -> tuple[int, int]:
        if i % 2:
            return len(tokenizer.encode_pairs(pairs).input_ids[0]), tokenizer.max_length
        return int(tokenizer.count_tokens([long_text])[0]), int(alone)

    with ThreadPoolExecutor(4) as pool:
        for got, want in pool.map(work, range(64)):
            assert got == want
