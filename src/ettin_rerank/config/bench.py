"""The benchmark's engines, workloads and settings (`ettin-rerank bench`, `benchmarking/`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict


class OurMode(TypedDict, total=False):
    """`Reranker.from_pretrained`'s keyword arguments for one of our engines."""

    dtype: str
    quantize: str


OUR_MODES: dict[str, OurMode] = {
    "ours-exact": {"dtype": "float32"},
    "ours-auto": {
        "dtype": "auto"
    },  # what `search` and `serve` run by default: bf16 only where measured to pay
    "ours-bf16": {"dtype": "bfloat16"},
    "ours-fp16": {"dtype": "float16"},
    "ours-int8": {"dtype": "float32", "quantize": "int8"},
}
ONNX_MODES = {"onnx-ours": None, "onnx-ours-int8": "int8"}  # our export on onnxruntime -> its quantize
# our fp32 export on OpenVINO -> its INFERENCE_PRECISION_HINT; openvino-int8: NNCF's int8 graph, run in f32
OPENVINO_MODES = {"openvino": "f32", "openvino-bf16": "bf16", "openvino-int8": "f32"}
ST_BACKENDS = {"st-onnx": "onnx", "st-openvino": "openvino"}  # CrossEncoder(backend=...) through optimum
ST_MODES = ("st-default", "st-bf16", *ST_BACKENDS)
ENGINES = (*OUR_MODES, *ONNX_MODES, *OPENVINO_MODES, *ST_MODES)
DEFAULT_ENGINES = ("ours-exact", "ours-int8", "ours-bf16", "st-default", "st-bf16")

WORKLOADS = ("beir-short", "long")
SHORT_MAX_LENGTH = 512  # the published benchmark truncates documents at 512 tokens
# Pairs each engine scores once before timing, by device type. On CUDA a few pairs left the first timed
# pass 3-4.5x slower than the rest (H200, 2026-12-04: the caching allocator grows to full batches then),
# so a GPU warms up on more than one of our batches (131,072 tokens) and several of the CrossEncoder's.
WARMUP_PAIRS = {"cpu": 8, "cuda": 1024}


@dataclass
class BenchConfig:
    model_dir: str
    data_dir: str
    workload: str = "beir-short"  # a WORKLOADS entry
    engines: list[str] = field(default_factory=lambda: list(DEFAULT_ENGINES))
    repeats: int = 3
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads for every engine (None: torch's default)
    batch_tokens: int | None = None  # our token budget (None: the engine's default)
    st_batch_size: int = 32
    num_queries: int = 10  # beir-short: queries, each with docs_per_query documents
    docs_per_query: int = 100
    num_docs: int = 20  # long: documents of min_tokens..max_tokens
    min_tokens: int = 2000
    max_tokens: int = 8000
    max_length: int | None = None  # None: SHORT_MAX_LENGTH for beir-short, the model's limit for long
    seed: int = 0
    workdir: str | None = None  # where the ONNX/OpenVINO engines' exports go (None: a temporary folder)
