"""The CUDA path end to end against the reference (skipped without a CUDA GPU): Sentence Transformers'
CrossEncoder over transformers' ModernBERT, fp32 on the CPU, scores the same pairs as our engine on
the GPU in fp32 (the vectorised `varlen` attention) and in bf16/fp16 (PyTorch's or flash-attn's
variable-length kernel, fp32 head).

Half precision is held to the reference's own half precision: on these random models bf16 moves a
score by up to 2e-2 (tiny) and 9e-2 (17m) in the reference itself, so a fixed bound would test the
format, not the engine. Measured max |diff| against fp32, ours / the reference's, bf16: tiny 2.2e-2 /
2.2e-2 and 17m 7.2e-2 / 8.9e-2 on the CPU; tiny 2.6e-2 / 1.6e-2 on an H200 (2026-12-04)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from ettin_rerank.modeling.attention import cuda_flash_capable, default_backend
from reference_models import build_ettin_reference, mixed_pairs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# fp32 on the GPU: cuBLAS sums in another order than the CPU, TF32 stays off (torch's default)
CUDA_FP32_TOL = 1e-4
# ours in half precision against fp32, over the reference's own half precision against fp32
HALF_OVER_REFERENCE_HALF = 2.0  # measured up to 1.56 (tiny, bf16, H200); a broken kernel moves scores by O(1)
HALF_FLOOR = 2e-3  # where the reference's half precision happens to land very near fp32


@pytest.fixture(scope="module")
def references(modernbert_tokenizer_dir, tmp_path_factory):
    """size -> (model directory, the reference's fp32 CPU scores of `mixed_pairs()`)."""
    built = {}
    for size in ("tiny", "17m"):
        model_dir, reference = build_ettin_reference(
            size, modernbert_tokenizer_dir, tmp_path_factory.mktemp("cuda") / f"ettin-{size}"
        )
        built[size] = (model_dir, reference.predict(mixed_pairs(), batch_size=4))
    return built


def reference_half_deviation(model_dir, dtype: str, expected: np.ndarray) -> float:
    """How far the reference's own half precision (CrossEncoder loaded in `dtype`, SDPA, on the GPU)
    moves the scores from its fp32 scores."""
    from sentence_transformers import CrossEncoder

    half = CrossEncoder(
        str(model_dir),
        device="cuda",
        activation_fn=torch.nn.Identity(),
        model_kwargs={"dtype": getattr(torch, dtype), "attn_implementation": "sdpa"},
    )
    return float(np.abs(half.predict(mixed_pairs(), batch_size=4) - expected).max())


@pytest.mark.parametrize("size", ["tiny", "17m"])
def test_fp32_on_cuda_matches_the_reference(references, size):
    model_dir, expected = references[size]
    reranker = Reranker.from_pretrained(model_dir, device="cuda", dtype="float32")
    assert reranker.attention == "varlen"
    np.testing.assert_allclose(reranker.predict(mixed_pairs()), expected, atol=CUDA_FP32_TOL, rtol=0)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("size", ["tiny", "17m"])
def test_half_precision_on_cuda_stays_near_the_reference(references, size, dtype):
    model_dir, expected = references[size]
    reranker = Reranker.from_pretrained(model_dir, device="cuda", dtype=dtype)
    assert reranker.dtype == getattr(torch, dtype)
    assert reranker.attention == default_backend(torch.device("cuda"), reranker.dtype)
    if cuda_flash_capable(torch.device("cuda")):
        assert reranker.attention in ("flash", "torch_varlen")
    scores = reranker.predict(mixed_pairs())
    assert scores.dtype == np.float32
    bound = max(HALF_OVER_REFERENCE_HALF * reference_half_deviation(model_dir, dtype, expected), HALF_FLOOR)
    np.testing.assert_allclose(scores, expected, atol=bound, rtol=0)


def test_auto_on_cuda_is_bf16_with_a_varlen_kernel_where_native(references):
    model_dir, _ = references["tiny"]
    auto = Reranker.from_pretrained(model_dir, device="cuda", dtype="auto")
    if not torch.cuda.is_bf16_supported(including_emulation=False):  # before Ampere: exact fp32
        assert auto.dtype == torch.float32 and auto.attention == "varlen"
        return
    assert auto.dtype == torch.bfloat16 and auto.attention in ("flash", "torch_varlen")
    bf16 = Reranker.from_pretrained(model_dir, device="cuda", dtype="bfloat16")
    np.testing.assert_array_equal(auto.predict(mixed_pairs()), bf16.predict(mixed_pairs()))


def test_cuda_batches_of_every_budget_score_alike(references):
    """Batch composition must not change a score: the packed kernels see one sequence at a time."""
    model_dir, _ = references["17m"]
    reranker = Reranker.from_pretrained(model_dir, device="cuda", dtype="bfloat16")
    pairs = mixed_pairs() * 8
    whole = reranker.predict(pairs)
    one_by_one = np.concatenate([reranker.predict([pair]) for pair in pairs[: len(mixed_pairs())]])
    np.testing.assert_allclose(whole[: len(one_by_one)], one_by_one, atol=1e-2, rtol=0)
    np.testing.assert_allclose(reranker.predict(pairs, batch_tokens=512), whole, atol=1e-2, rtol=0)
