"""Each speed mode against the fp32 reference, within the tolerance stated for it (docs/speed.md).

Exact (fp32, every attention path): within 1e-4 of the padded eager reference and of
Sentence Transformers. bf16 and int8: bounded deviations, measured on these pairs with a
margin of about 5x; the head and the returned scores stay fp32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from ettin_rerank.inference.int8 import INT8_LINEARS
from tolerances import BF16_TOL, INT8_TINY_TOL

EXACT_TOL = 1e-4


@pytest.fixture(scope="module")
def pairs(random_word_pairs):
    return random_word_pairs


def padded_reference_scores(reranker: Reranker, pairs) -> np.ndarray:
    """The eager backend (padded, dense fp32 attention) on the same lent model, in one batch."""
    eager = Reranker(reranker.model, reranker.tokenizer, attention="eager")
    return eager.predict_encoded(reranker.encode(pairs), batch_tokens=10**9)


@pytest.fixture(scope="module")
def reference(tiny_reranker_dir, pairs):
    exact = Reranker.from_pretrained(tiny_reranker_dir)
    return padded_reference_scores(exact, pairs)


@pytest.mark.parametrize("backend", ["varlen", "eager"])
@pytest.mark.parametrize("batch_tokens", [64, 700, 100_000])
def test_exact_mode_every_path_within_1e4(tiny_reranker_dir, pairs, reference, backend, batch_tokens):
    reranker = Reranker.from_pretrained(tiny_reranker_dir, attention=backend)
    scores = reranker.predict(pairs, batch_tokens=batch_tokens)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, reference, atol=EXACT_TOL, rtol=0)
    encoded_scores = reranker.predict_encoded(reranker.encode(pairs), batch_tokens=batch_tokens)
    np.testing.assert_allclose(encoded_scores, reference, atol=EXACT_TOL, rtol=0)


def test_exact_mode_matches_sentence_transformers(tiny_reranker_dir, pairs):
    st = pytest.importorskip("sentence_transformers")
    model = st.CrossEncoder(str(tiny_reranker_dir), activation_fn=torch.nn.Identity())
    want = model.predict(pairs, batch_size=7)
    got = Reranker.from_pretrained(tiny_reranker_dir).predict(pairs)
    np.testing.assert_allclose(got, want, atol=EXACT_TOL, rtol=0)


def test_bf16_mode_within_its_bound_with_fp32_head(tiny_reranker_dir, pairs, reference):
    # bf16 kernels on every CPU: a lent model runs as given, while from_pretrained(dtype="bfloat16")
    # runs fp32 on a CPU without native bf16 (tests/inference/test_cpu_modes.py)
    loaded = Reranker.from_pretrained(tiny_reranker_dir)
    loaded.model.encoder.to(torch.bfloat16)
    reranker = Reranker(loaded.model, loaded.tokenizer)
    assert reranker.model.encoder_dtype == torch.bfloat16 and reranker.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in reranker.model.head.parameters())
    scores = reranker.predict(pairs)
    assert scores.dtype == np.float32
    assert np.abs(scores - reference).max() <= BF16_TOL
    sig = reranker.predict(pairs, activation="sigmoid")
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-scores.astype(np.float64))), rtol=1e-6)


def test_int8_mode_within_its_bound(tiny_reranker_dir, pairs, reference):
    reranker = Reranker.from_pretrained(tiny_reranker_dir, quantize="int8")
    encoder_modules = list(reranker.model.encoder.modules())
    assert not any(type(m) is torch.nn.Linear for m in encoder_modules)  # every linear swapped
    assert any(isinstance(m, INT8_LINEARS) for m in encoder_modules)
    assert all(
        type(m) is torch.nn.Linear for m in reranker.model.head.modules() if "Linear" in type(m).__name__
    )
    scores = reranker.predict(pairs)
    assert scores.dtype == np.float32
    assert np.abs(scores - reference).max() <= INT8_TINY_TOL


def test_mode_validation(tiny_reranker_dir):
    with pytest.raises(ValueError, match="quantize"):
        Reranker.from_pretrained(tiny_reranker_dir, quantize="int4")
    with pytest.raises(ValueError, match="CPU mode"):
        Reranker.from_pretrained(tiny_reranker_dir, quantize="int8", dtype="bfloat16")
    with pytest.raises(ValueError, match="num_threads"):
        Reranker.from_pretrained(tiny_reranker_dir, num_threads=0)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "bound"), [({"dtype": "bfloat16"}, 5e-2), ({"quantize": "int8"}, 1e-2)])
def test_17m_fast_modes_on_scifact(modernbert_tokenizer_dir, scifact_dir, tmp_path, mode, bound):
    from ettin_rerank.benchmarking.workloads import beir_short_pairs
    from ettin_rerank.family import create_random_reranker

    model_dir = create_random_reranker("17m", modernbert_tokenizer_dir, tmp_path / "17m", seed=0)
    pairs = beir_short_pairs(scifact_dir, num_queries=1, docs_per_query=30)
    exact = Reranker.from_pretrained(model_dir, max_length=512).predict(pairs)
    fast = Reranker.from_pretrained(model_dir, max_length=512, **mode).predict(pairs)
    assert np.abs(fast - exact).max() <= bound
