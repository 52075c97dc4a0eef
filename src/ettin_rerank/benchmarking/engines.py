"""The engines a benchmark compares: ours in each mode, Sentence Transformers' CrossEncoder.

Each engine is a `scoring.PairScorer` (`name` is the engine's name, `score_pairs` the timed call)
with a `description` of how it was loaded, for the report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from ..inference.reranker import Reranker
from ..modeling.attention import flash_attn_available
from ..scoring import PairScorer

logger = logging.getLogger(__name__)

OUR_MODES = {
    "ours-exact": {"dtype": "float32"},
    "ours-bf16": {"dtype": "bfloat16"},
    "ours-fp16": {"dtype": "float16"},
    "ours-int8": {"dtype": "float32", "quantize": "int8"},
}
ST_MODES = ("st-default", "st-bf16")
ENGINES = (*OUR_MODES, *ST_MODES)
DEFAULT_ENGINES = ("ours-exact", "ours-int8", "ours-bf16", "st-default", "st-bf16")


class BenchEngine(PairScorer, Protocol):
    description: str  # how the engine was loaded: precision, attention


class OurEngine:
    """`ours-*`: our `Reranker` in one speed mode, with the benchmark's token budget per batch."""

    def __init__(self, name: str, reranker: Reranker, batch_tokens: int | None = None):
        self.name = name
        self.reranker = reranker
        self.batch_tokens = batch_tokens  # None: the reranker's default for its device
        precision = reranker.quantize or str(reranker.dtype).removeprefix("torch.")
        self.description = f"ettin-rerank {precision}, attention {reranker.attention}"

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return self.reranker.predict(pairs, batch_tokens=self.batch_tokens, show_progress_bar=False)


class SentenceTransformersEngine:
    """`st-default`: CrossEncoder's default loading (fp32, SDPA on padded batches).
    `st-bf16`: its best setting here: bf16 weights, flash attention 2 when installed (CUDA)."""

    def __init__(self, name: str, model_dir: str, device: str, max_length: int | None, batch_size: int = 32):
        from sentence_transformers import CrossEncoder  # the eval extra, needed by these engines only

        kwargs = {}
        self.description = "sentence-transformers CrossEncoder, default loading (fp32, sdpa)"
        if name == "st-bf16":
            attn = "flash_attention_2" if device.startswith("cuda") and flash_attn_available() else "sdpa"
            kwargs["model_kwargs"] = {"dtype": torch.bfloat16, "attn_implementation": attn}
            self.description = f"sentence-transformers CrossEncoder, bf16, {attn}"
        self.name = name
        self.batch_size = batch_size
        self.model = CrossEncoder(
            model_dir, device=device, max_length=max_length, activation_fn=torch.nn.Identity(), **kwargs
        )

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        scores = self.model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(scores, dtype=np.float32)


def load_engine(
    name: str,
    model_dir: str,
    device: str = "cpu",
    max_length: int | None = None,
    batch_tokens: int | None = None,
    st_batch_size: int = 32,
) -> BenchEngine:
    if name in OUR_MODES:
        reranker = Reranker.from_pretrained(
            model_dir, device=device, max_length=max_length, **OUR_MODES[name]
        )
        return OurEngine(name, reranker, batch_tokens)
    if name in ST_MODES:
        return SentenceTransformersEngine(name, model_dir, device, max_length, st_batch_size)
    raise ValueError(f"unknown engine {name!r}; choose from {list(ENGINES)}")
