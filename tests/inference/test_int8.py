"""The int8 mode's linears against the fp32 ones they replace, and the ranking it keeps on the bundled
model against exact fp32 (tests/tolerances.py; issue 23 asks Spearman >= 0.99, top-10 >= 0.95)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank.inference.int8 import (
    ChannelRange,
    Int8Linear,
    OneDnnInt8Linear,
    activation_levels,
    calibration_batches,
    calibration_pairs,
    linear_input_ranges,
    onednn_int8_available,
    quantize_linears_int8,
    smoothing_factors,
)
from tolerances import INT8_BUNDLED_MIN_SPEARMAN, INT8_BUNDLED_MIN_TOP10, INT8_LINEAR_REL_TOL

# 8-bit activations are right only where int8 products are summed in 32 bits (`activation_levels`)
CPU_LEVELS = activation_levels()  # what int8 mode uses on this CPU
needs_full_range = pytest.mark.skipif(
    CPU_LEVELS < 256, reason="8-bit activations need VNNI or AMX; int8 mode uses 7 bits on this CPU"
)


@pytest.mark.parametrize("reduce_range", [pytest.param(False, marks=needs_full_range), True])
def test_fbgemm_int8_linear_follows_the_fp32_linear(reduce_range):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(2, 33, 64)  # (batch, tokens, in): any leading shape
    expected = linear(x)
    got = Int8Linear(linear, reduce_range)(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max() <= INT8_LINEAR_REL_TOL * expected.abs().max()


needs_onednn_int8 = pytest.mark.skipif(
    not onednn_int8_available(), reason="torch without oneDNN's int8 linear"
)


def channel_range(x: torch.Tensor) -> ChannelRange:
    rows = x.reshape(-1, x.shape[-1])
    return ChannelRange(rows.amin(dim=0), rows.amax(dim=0))


@needs_onednn_int8
@pytest.mark.parametrize("levels", [pytest.param(256, marks=needs_full_range), 128])  # 8 bits, 7 bits
@pytest.mark.parametrize("smoothed", [False, True])
def test_onednn_int8_linear_follows_the_fp32_linear(levels, smoothed):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(2, 33, 64)  # (batch, tokens, in): any leading shape
    calibrated = channel_range(x)
    smoothing = smoothing_factors(linear, calibrated.absmax) if smoothed else None
    expected = linear(x)
    got = OneDnnInt8Linear(linear, calibrated, smoothing, levels)(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    tolerance = INT8_LINEAR_REL_TOL * (256 / levels)  # one bit less: twice the step
    assert (got - expected).abs().max() <= tolerance * expected.abs().max()


@needs_onednn_int8
def test_a_static_int8_row_does_not_depend_on_the_rest_of_its_batch():
    # one activation scale fixed in calibration: a pair scores the same whatever it is batched with
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(300, 64)
    int8 = OneDnnInt8Linear(
        linear, channel_range(x), smoothing_factors(linear, x.abs().amax(dim=0)), CPU_LEVELS
    )
    alone = torch.cat([int8(x[i : i + 1]) for i in range(0, 300, 37)])
    louder = x.clone()
    louder[1:] *= 3  # the others' range triples: a per-call scale would change for row 0
    torch.testing.assert_close(int8(x)[::37], alone, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(int8(louder)[0], int8(x)[0], rtol=1e-6, atol=1e-6)


@needs_onednn_int8
def test_an_input_beyond_the_calibrated_range_saturates_at_its_edge():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    calibrated = ChannelRange(torch.full((16,), -1.0), torch.full((16,), 1.0))
    int8 = OneDnnInt8Linear(linear, calibrated, None, CPU_LEVELS)
    x = torch.full((1, 16), 5.0)
    edge = linear(torch.ones(1, 16))
    assert (int8(x) - edge).abs().max() <= INT8_LINEAR_REL_TOL * edge.abs().max()


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
    assert all(ranges[m].low.shape == ranges[m].high.shape == (m.in_features,) for m in linears)
    assert all((ranges[m].low <= ranges[m].high).all() and (ranges[m].absmax > 0).all() for m in linears)
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


@pytest.mark.parametrize("static", [pytest.param(True, marks=needs_onednn_int8), False])
def test_every_encoder_linear_becomes_int8(static):
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
    x = torch.randn(64, 8)
    ranges = {encoder[0]: channel_range(x), encoder[2]: channel_range(encoder[1](encoder[0](x)))}
    expected = encoder(x)
    quantize_linears_int8(encoder, ranges, static=static)
    kind = OneDnnInt8Linear if static else Int8Linear
    assert isinstance(encoder[0], kind) and isinstance(encoder[2], kind)
    assert (encoder(x) - expected).abs().max() <= 2 * INT8_LINEAR_REL_TOL * expected.abs().max()


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


def test_int8_keeps_the_linears_that_read_only_first_tokens_in_fp32(tiny_reranker_dir):
    # the last layer under a CLS-pooling head: its attention output and MLP see one row per pair
    from ettin_rerank import Reranker
    from ettin_rerank.inference.int8 import INT8_LINEARS

    reranker = Reranker.from_pretrained(tiny_reranker_dir, quantize="int8")
    *earlier, last = reranker.model.encoder.layers
    assert all(isinstance(m, INT8_LINEARS) for m in (last.attn.Wqkv, *(layer.mlp.Wo for layer in earlier)))
    fp32 = (last.attn.Wo, last.mlp.Wi, last.mlp.Wo)
    assert not any(isinstance(m, INT8_LINEARS) for m in fp32)
    assert all(m.weight.dtype == torch.float32 for m in fp32 if isinstance(m, torch.nn.Linear))
