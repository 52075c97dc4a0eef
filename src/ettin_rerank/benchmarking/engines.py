"""The engines a benchmark compares: ours in each mode, Sentence Transformers' CrossEncoder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..inference.reranker import Reranker
from ..modeling.attention import flash_attn_available

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


@dataclass
class Engine:
    name: str
    description: str
    predict: Callable[[list[tuple[str, str]]], np.ndarray]


def load_ours(
    name: str, model_dir: str, device: str, max_length: int | None, batch_tokens: int | None
) -> Engine:
    mode = OUR_MODES[name]
    reranker = Reranker.from_pretrained(model_dir, device=device, max_length=max_length, **mode)
    backend = reranker.model.encoder.attention_backend
    description = f"ettin-rerank {mode.get('quantize') or mode['dtype']}, attention {backend}"

    def predict(pairs):
        return reranker.predict(pairs, batch_tokens=batch_tokens)

    return Engine(name, description, predict)


def load_sentence_transformers(
    name: str, model_dir: str, device: str, max_length: int | None, batch_size: int = 32
) -> Engine:
    """`st-default`: CrossEncoder's default loading (fp32, SDPA on padded batches).
    `st-bf16`: its best setting here: bf16 weights, flash attention 2 when installed (CUDA)."""
    from sentence_transformers import CrossEncoder

    kwargs = {}
    description = "sentence-transformers CrossEncoder, default loading (fp32, sdpa)"
    if name == "st-bf16":
        attn = "flash_attention_2" if device.startswith("cuda") and flash_attn_available() else "sdpa"
        kwargs["model_kwargs"] = {"dtype": torch.bfloat16, "attn_implementation": attn}
        description = f"sentence-transformers CrossEncoder, bf16, {attn}"
    model = CrossEncoder(
        model_dir, device=device, max_length=max_length, activation_fn=torch.nn.Identity(), **kwargs
    )

    def predict(pairs):
        scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32)

    return Engine(name, description, predict)


def load_engine(
    name: str,
    model_dir: str,
    device: str = "cpu",
    max_length: int | None = None,
    batch_tokens: int | None = None,
    st_batch_size: int = 32,
) -> Engine:
    if name in OUR_MODES:
        return load_ours(name, model_dir, device, max_length, batch_tokens)
    if name in ST_MODES:
        return load_sentence_transformers(name, model_dir, device, max_length, st_batch_size)
    raise ValueError(f"unknown engine {name!r}; choose from {list(ENGINES)}")
