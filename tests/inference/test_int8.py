"""The int8 mode's linears against the fp32 ones they replace, and the ranking it keeps on the bundled
model against exact fp32 (tests/tolerances.py; issue 23 asks Spearman >= 0.99, top-10 >= 0.95)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank.inference.modes import Int8Linear, quantize_linears_int8
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
