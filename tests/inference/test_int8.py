"""The int8 mode's linears against the fp32 ones they replace, and the ranking it keeps on the bundled
model against exact fp32 (tests/tolerances.py; issue 23 asks Spearman >= 0.99, top-10 >= 0.95)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank.inference.int8 import (
    Int8Linear,
    calibration_batches,
    calibration_pairs,
    linear_input_ranges,
    quantize_linears_int8,
    smoothing_factors,
)
from tolerances import INT8_BUNDLED_MIN_SPEARMAN, INT8_BUNDLED_MIN_TOP10, INT8_LINEAR_REL_TOL


@pytest.mark.parametrize("reduce_range", [False, True])
def test_fbgemm_int8_linear_follows_the_fp32_linear(reduce_range):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(2, 33, 64)  # (batch, tokens, in): any leading shape
    expected = linear(x)
    got = Int8Linear(linear, reduce_range)(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max() <= INT8_LINEAR_REL_TOL * expected.abs().max()


def test_smoothing_keeps_an_outlier_channel_from_crushing_the_others():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(512, 64)
    x[:, 5] *= 60  # one channel far larger than the rest, as in a transformer's hidden states
    expected = linear(x)
    plain = (Int8Linear(linear, reduce_range=False)(x) - expected).abs().max()
    smoothing = smoothing_factors(linear, x.abs().amax(dim=0))
    smoothed = (Int8Linear(linear, reduce_range=False, smoothing=smoothing)(x) - expected).abs().max()
    print(f"outlier channel: max |error| {plain:.4f} one scale per call, {smoothed:.4f} smoothed")
    assert smoothed < plain / 3


def test_calibration_measures_every_encoder_linear_and_leaves_the_model_as_it_was(tiny_reranker_dir):
    from ettin_rerank import Reranker

    reranker = Reranker.from_pretrained(tiny_reranker_dir, dtype="float32")
    batches = calibration_batches(reranker.tokenizer)
    before = reranker.model(batches[0])
    ranges = linear_input_ranges(reranker.model, batches)
    linears = [m for m in reranker.model.encoder.modules() if type(m) is torch.nn.Linear]
    assert set(ranges) == set(linears)
    assert all(ranges[m].shape == (m.in_features,) and (ranges[m] >= 0).all() for m in linears)
    torch.testing.assert_close(reranker.model(batches[0]), before, rtol=0, atol=0)  # hooks removed


def test_calibration_pairs_cover_short_and_long_pairs(modernbert_tokenizer_dir):
    from ettin_rerank.inference.tokenization import PairTokenizer

    pairs = calibration_pairs()
    tokenizer = PairTokenizer.from_dir(modernbert_tokenizer_dir, 512, with_token_type_ids=False)
    lengths = [len(ids) for ids in tokenizer.encode_pairs(pairs).input_ids]
    assert len(pairs) == 24 and min(lengths) < 100 and max(lengths) > 200


def test_int8_without_calibration_is_refused(tiny_reranker_dir):
    from ettin_rerank.inference.modes import prepare_model
    from ettin_rerank.modeling.loading import load_checkpoint

    with pytest.raises(ValueError, match="int8_calibration"):
        prepare_model(load_checkpoint(tiny_reranker_dir).model, "cpu", "float32", "int8")


def test_every_encoder_linear_becomes_int8():
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
    quantize_linears_int8(encoder)
    assert isinstance(encoder[0], Int8Linear) and isinstance(encoder[2], Int8Linear)


@pytest.mark.slow  # 600 scorings of the bundled model (~40 s on 2 cores)
def test_int8_keeps_the_bundled_models_ranking(scifact_dir):
    from scipy.stats import spearmanr

    from ettin_rerank import Reranker, models
    from ettin_rerank.benchmarking.workloads import beir_short_pairs

    bundled = models.bundled_model_dir()
    assert bundled is not None

    pairs = beir_short_pairs(scifact_dir, num_queries=3, docs_per_query=100, seed=0)
    exact = Reranker.from_pretrained(bundled, dtype="float32").score_pairs(pairs)
    int8 = Reranker.from_pretrained(bundled, quantize="int8").score_pairs(pairs)
    assert spearmanr(int8, exact).statistic >= INT8_BUNDLED_MIN_SPEARMAN
    top10 = [
        len(set(np.argsort(-int8[q : q + 100])[:10]) & set(np.argsort(-exact[q : q + 100])[:10])) / 10
        for q in range(0, len(pairs), 100)
    ]
    assert np.mean(top10) >= INT8_BUNDLED_MIN_TOP10
