"""Exact mode's oneDNN linears (inference/onednn.py) against the nn.Linear they replace, and what a
prepared model still allows: casting, lending to Reranker, counting its parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from ettin_rerank.inference.onednn import (
    OneDnnLinear,
    onednn_linear_available,
    pack_linears_onednn,
    unpack_linears_onednn,
)

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="torch was built without oneDNN")


@pytest.mark.parametrize("bias", [True, False])
def test_onednn_linear_is_the_fp32_linear(bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96, bias=bias)
    packed = OneDnnLinear(linear)
    assert packed.weight.is_mkldnn
    for x in (torch.randn(37, 64), torch.randn(2, 5, 64), torch.randn(0, 64)):  # any leading shape, none
        torch.testing.assert_close(packed(x), linear(x), atol=1e-5, rtol=1e-5)


def test_onednn_linear_casts_like_a_linear():
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 16)
    packed = OneDnnLinear(linear)
    x = torch.randn(9, 32)
    packed.to(torch.bfloat16)
    assert not packed.weight.is_mkldnn and packed.weight.dtype == torch.bfloat16
    torch.testing.assert_close(packed(x.bfloat16()), linear.bfloat16()(x.bfloat16()))
    packed.float()
    assert packed.weight.is_mkldnn  # packed again in fp32
    torch.testing.assert_close(packed(x), linear.float()(x), atol=1e-5, rtol=1e-5)


def test_exact_mode_runs_onednn_and_counts_every_weight(tiny_reranker_dir, random_word_pairs):
    exact = Reranker.from_pretrained(tiny_reranker_dir, dtype="float32")
    encoder_modules = list(exact.model.encoder.modules())
    assert any(isinstance(m, OneDnnLinear) for m in encoder_modules)
    assert not any(type(m) is torch.nn.Linear for m in encoder_modules)
    reference = Reranker.from_pretrained(tiny_reranker_dir, dtype="float32")
    unpack_linears_onednn(reference.model.encoder)
    assert not any(isinstance(m, OneDnnLinear) for m in reference.model.encoder.modules())
    assert exact.num_parameters == reference.num_parameters
    np.testing.assert_allclose(
        exact.predict(random_word_pairs), reference.predict(random_word_pairs), atol=1e-5, rtol=0
    )


def test_pack_leaves_other_dtypes_as_they_are():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8).bfloat16())
    pack_linears_onednn(model)
    assert isinstance(model[0], OneDnnLinear) and type(model[1]) is torch.nn.Linear
