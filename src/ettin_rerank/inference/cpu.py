"""Which CPU kernels this machine has, decided in one place: what the bf16 fallback, the bf16
probe behind `dtype="auto"` (`cpu_probe.py`), `ettin-rerank info` and `bench` read.

Half precision and int8 pay on a CPU only where it has native instructions for them: bf16 needs
AVX512_BF16 or AMX-BF16 (without them oneDNN converts every bf16 matmul back to fp32, measured
0.40x of exact on an AVX2 EPYC), int8 runs fastest with a dot-product instruction (AVX512_VNNI,
AVX-VNNI or AMX-INT8); on AVX2 fbgemm still has int8 kernels, built from multiply-add sequences.
Native bf16 flags are necessary, not sufficient: on some AVX512_BF16 CPUs torch's bf16 matmul is
slower than fp32, so `dtype="auto"` measures before it picks bf16 (`cpu_probe.py`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CPUINFO = Path("/proc/cpuinfo")
# The x86 flags (as /proc/cpuinfo spells them) that decide which kernels run; printed by `info`.
KERNEL_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # any one of them: bf16 matmuls without conversion
NATIVE_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # any one: int8 dot products in one instruction
# any one: fbgemm sums int8 products in 32 bits, so its activations may use all 8 bits (elsewhere its
# 16-bit adds can saturate and activations keep 7: `reduce_range`)
FBGEMM_FULL_RANGE_INT8_FLAGS = ("avx512_vnni", "amx_int8")
# torch's dispatch level -> the flags it implies, for machines without /proc/cpuinfo (macOS, Windows)
CAPABILITY_FLAGS = {
    "AVX2": ("avx2", "fma"),
    "AVX512": ("avx2", "fma", "avx512f"),
}


@dataclass(frozen=True)
class CpuKernels:
    """What this CPU can run natively, from its flags."""

    flags: tuple[str, ...]  # the `KERNEL_FLAGS` this CPU has, in that order
    torch_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", "DEFAULT", ...
    source: str  # where `flags` came from: "/proc/cpuinfo", or "torch" where that file is absent
    model_name: str = ""  # /proc/cpuinfo "model name" ("" where unknown): part of the probe cache key

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    @property
    def native_int8(self) -> bool:
        """An int8 dot-product instruction (VNNI/AMX); without one int8 still runs, more slowly."""
        return any(flag in self.flags for flag in NATIVE_INT8_FLAGS)

    @property
    def fbgemm_full_range_int8(self) -> bool:
        return any(flag in self.flags for flag in FBGEMM_FULL_RANGE_INT8_FLAGS)

    def missing(self, wanted: tuple[str, ...]) -> str:
        """The flags of `wanted` this CPU lacks, as one phrase for messages ("avx512_bf16 or amx_bf16")."""
        return " or ".join(flag for flag in wanted if flag not in self.flags)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (`ettin-rerank info --json`, `bench`)."""
        return {
            "flags": list(self.flags),
            "torch_capability": self.torch_capability,
            "native_bf16": self.native_bf16,
            "native_int8": self.native_int8,
            "source": self.source,
            "model_name": self.model_name,
        }


def parse_cpuinfo_flags(text: str) -> tuple[str, ...]:
    """The `KERNEL_FLAGS` named on the first `flags` line of /proc/cpuinfo text (x86 Linux)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            present = set(value.split())
            return tuple(flag for flag in KERNEL_FLAGS if flag in present)
    return ()


def parse_cpuinfo_model_name(text: str) -> str:
    """The first "model name" of /proc/cpuinfo text ("" where there is none, e.g. on ARM)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return ""


@functools.cache
def cpu_kernels() -> CpuKernels:
    """This CPU's kernels (read once per process): /proc/cpuinfo flags on Linux; elsewhere the
    flags torch's own dispatch level implies (which cannot tell bf16 or VNNI apart, so neither is
    claimed)."""
    capability = torch.backends.cpu.get_cpu_capability()
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if "flags" in text:
        return CpuKernels(parse_cpuinfo_flags(text), capability, str(CPUINFO), parse_cpuinfo_model_name(text))
    return CpuKernels(CAPABILITY_FLAGS.get(capability.split("_")[0], ()), capability, "torch")
