"""Our engine reproduces the reference implementations' scores (fp32, max |diff| <= 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from reference_models import (
    build_bert_classifier,
    build_ettin_reference,
    build_modernbert_classifier,
    mixed_pairs,
    transformers_scores,
)

TOLERANCE = 1e-4
DEFAULT_SIZES = ["tiny", "17m", "32m"]
SLOW_SIZES = ["68m", "150m", "400m", "1b"]


def _check_ettin_size(size, tokenizer_dir, tmp_path):
    model_dir, reference = build_ettin_reference(size, tokenizer_dir, tmp_path / f"ettin-{size}")
    pairs = mixed_pairs()
    expected = reference.predict(pairs, batch_size=4)
    ours = Reranker.from_pretrained(model_dir).predict(pairs)
    assert ours.dtype == np.float32 and ours.shape == (len(pairs),)
    assert np.ptp(expected) > 1e-2, "reference scores should differ between pairs for a meaningful comparison"
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("size", DEFAULT_SIZES)
def test_ettin_modular_layout_matches_sentence_transformers(size, modernbert_tokenizer_dir, tmp_path):
    _check_ettin_size(size, modernbert_tokenizer_dir, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("size", SLOW_SIZES)
def test_ettin_modular_layout_matches_sentence_transformers_all_sizes(
    size, modernbert_tokenizer_dir, tmp_path
):
    _check_ettin_size(size, modernbert_tokenizer_dir, tmp_path)


def test_modernbert_sequence_classification_matches_transformers(modernbert_tokenizer_dir, tmp_path):
    model_dir, model, tokenizer = build_modernbert_classifier(modernbert_tokenizer_dir, tmp_path / "mbc")
    pairs = mixed_pairs()
    expected = transformers_scores(model, tokenizer, pairs, max_length=7999).numpy()
    reranker = Reranker.from_pretrained(model_dir)
    assert reranker.architecture == "ModernBertForSequenceClassification"
    np.testing.assert_allclose(reranker.predict(pairs), expected, atol=TOLERANCE, rtol=0)


def test_bert_sequence_classification_matches_transformers(bert_tokenizer_dir, tmp_path):
    model_dir, model, tokenizer = build_bert_classifier(bert_tokenizer_dir, tmp_path / "bert")
    pairs = mixed_pairs()
    expected = transformers_scores(
        model, tokenizer, pairs, max_length=512
    ).numpy()  # the 700-token pair is cut
    reranker = Reranker.from_pretrained(model_dir)
    assert reranker.max_length == 512
    np.testing.assert_allclose(reranker.predict(pairs), expected, atol=TOLERANCE, rtol=0)
    assert reranker.encode(pairs).truncated.tolist() == [
        len(tokenizer([q], [d])["input_ids"][0]) > 512 for q, d in pairs
    ]


def test_truncation_matches_reference_and_is_reported(modernbert_tokenizer_dir, tmp_path):
    from sentence_transformers import CrossEncoder

    model_dir, _ = build_ettin_reference(
        "tiny", modernbert_tokenizer_dir, tmp_path / "ettin", max_length=7999
    )
    reference = CrossEncoder(str(model_dir), activation_fn=torch.nn.Identity(), max_length=160)
    pairs = mixed_pairs()
    reranker = Reranker.from_pretrained(model_dir, max_length=160)
    np.testing.assert_allclose(reranker.predict(pairs), reference.predict(pairs), atol=TOLERANCE, rtol=0)

    encoded = reranker.encode(pairs)
    full = Reranker.from_pretrained(model_dir).encode(pairs)
    assert encoded.truncated.tolist() == (full.lengths > 160).tolist()
    assert encoded.truncated.any() and not encoded.truncated.all()
    assert (encoded.lengths <= 160).all()
    # The document is cut first: a truncated pair keeps its whole query.
    long_index = 4
    query_tokens = reranker.tokenizer.count_tokens([pairs[long_index][0]])[0]
    assert (
        encoded.input_ids[long_index][1 : 1 + query_tokens]
        == full.input_ids[long_index][1 : 1 + query_tokens]
    ).all()


def test_padded_reference_path_equals_unpadded(tiny_reranker_dir):
    reranker = Reranker.from_pretrained(tiny_reranker_dir)
    encoded = reranker.encode(mixed_pairs())
    padded = Reranker.from_pretrained(tiny_reranker_dir, attention="eager").predict_encoded(encoded)
    np.testing.assert_allclose(reranker.predict_encoded(encoded), padded, atol=TOLERANCE, rtol=0)


def test_scores_do_not_depend_on_batch_composition(tiny_reranker_dir):
    reranker = Reranker.from_pretrained(tiny_reranker_dir)
    pairs = mixed_pairs()
    together = reranker.predict(pairs)
    alone = np.array([reranker.predict([pair])[0] for pair in pairs])
    small_batches = reranker.predict(pairs, batch_tokens=64)
    np.testing.assert_allclose(together, alone, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(together, small_batches, atol=TOLERANCE, rtol=0)
