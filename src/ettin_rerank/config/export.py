"""The ONNX export's modes and defaults (`ettin-rerank export`, `export/onnx.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

QUANTIZE_MODES = (None, "int8")


class Int8Target(TypedDict):
    weights: str  # an onnxruntime QuantType name
    activations: str  # an onnxruntime QuantType name
    reduce_range: bool  # 7-bit weights


# Which int8 formats onnxruntime runs best on each CPU (its quantization guide): signed weights with
# unsigned activations (U8S8) everywhere. With VNNI the dot product is exact; on AVX2/AVX-512 without
# it, the U8S8 kernel (VPMADDUBSW) adds pairs of products in int16 and can saturate, so weights use 7
# bits (reduce_range). Measured on an AVX2 EPYC (random 17m, 64 SciFact pairs, 1 thread, CPU seconds):
# U8S8 4.79 s but max |diff| 0.030; U8S8 reduce_range 5.31 s, 0.006; U8U8 6.20 s, 0.006; fp32 6.39 s.
INT8_TARGETS: dict[str, Int8Target] = {
    "avx512_vnni": {"weights": "QInt8", "activations": "QUInt8", "reduce_range": False},
    "avx512": {"weights": "QInt8", "activations": "QUInt8", "reduce_range": True},
    "avx2": {"weights": "QInt8", "activations": "QUInt8", "reduce_range": True},
}


@dataclass(frozen=True)
class ExportOptions:
    """What `export_onnx` decides when a caller names nothing (its parameters' defaults)."""

    quantize: str | None = None  # a QUANTIZE_MODES entry
    max_length: int | None = None  # tokens per pair; None: the model's own limit
    int8_target: str | None = None  # an INT8_TARGETS key; None: this machine's CPU


EXPORT = ExportOptions()
