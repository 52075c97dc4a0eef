"""Half-precision export: half the bytes, fp32 compute, both engines still agree."""

from __future__ import annotations

import numpy as np
import torch

from ettin_rerank import Reranker
from ettin_rerank.modeling.loading import export_half_precision
from reference_models import mixed_pairs


def test_half_precision_export_scores_like_the_original(tiny_reranker_dir, tmp_path):
    from sentence_transformers import CrossEncoder

    out = export_half_precision(tiny_reranker_dir, tmp_path / "fp16")
    full_size = (tiny_reranker_dir / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size < 0.55 * full_size
    pairs = mixed_pairs()
    original = Reranker.from_pretrained(tiny_reranker_dir).predict(pairs)
    half = Reranker.from_pretrained(out)
    assert next(half.model.encoder.parameters()).dtype == torch.float32  # stored fp16, computed fp32
    ours = half.predict(pairs)
    np.testing.assert_allclose(ours, original, atol=5e-3)
    theirs = CrossEncoder(str(out), activation_fn=torch.nn.Identity()).predict(pairs)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
