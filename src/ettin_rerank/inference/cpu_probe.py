"""Whether bf16 pays on this CPU, measured once and cached: what `dtype="auto"` reads on a CPU.

Native bf16 flags are not enough: on an Intel Xeon with AVX512_BF16 (oneDNN brgemm
`avx512_core_bf16`, no AMX) torch's bf16 matmul ran at 92 GFLOP/s against 139 in fp32, and bf16
made search 25% slower. So on a CPU with native bf16 flags a short probe times bf16 against exact
fp32 on the matmuls that dominate the encoder, at torch's current thread count, and `auto` picks
bf16 only when it is clearly faster (`bf16_pays`). A CPU without the flags is never probed: its
bf16 is converted back to fp32 (0.40x of exact on an AVX2 EPYC). int8 stays out of `auto`
(`modes.auto_dtype` says why).

The result is cached in `config.paths.cache_dir()` per CPU model name, kernel flags, torch and
ettin-rerank version and thread count; a corrupt or foreign cache file is measured again.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..config.loading import dtype_name
from ..config.paths import cache_dir
from .cpu import NATIVE_BF16_FLAGS, CpuKernels
from .onednn import OneDnnLinear, onednn_linear_available

logger = logging.getLogger(__name__)

# bf16 is picked only at this speed over exact fp32 or more: below it the gain is within what a busy
# machine's timing noise can fake, and not worth bf16's rounding of every score.
BF16_MIN_SPEEDUP = 1.15
# (tokens, in features, out features) on a batch of 2,048 real tokens: the bundled MiniLM's fused QKV
# projection and FFN (hidden 384), and Ettin 17m's QKV / GLU input (hidden 256 -> 768). The smaller
# model's narrow matmuls gain least from bf16, so they keep the ratio honest for it too.
PROBE_LINEARS = ((2048, 384, 1152), (2048, 384, 1536), (2048, 256, 768))
# (sequences x heads, tokens, head dim): attention scores of 8 sequences of 256 tokens, 12 heads of 32
PROBE_ATTENTION = (96, 256, 32)
PROBE_REPEATS = 3  # timed rounds per dtype (after one warm-up round); the median is kept
CACHE_FILE = "cpu-bf16-probe.json"
CACHE_FORMAT = 2  # 2: fp32 timed through oneDNN's packed linear, as exact mode runs it


@dataclass(frozen=True)
class Bf16Probe:
    """bf16 against exact fp32 on this CPU, and what `auto` picks from it."""

    speedup: float | None  # bf16 speed / fp32 speed on the probe's matmuls; None: not probed
    fp32_gflops: float | None
    bf16_gflops: float | None
    threads: int  # torch's thread count the probe ran with
    source: str  # "measured", "cache", or why it was not probed

    @property
    def dtype(self) -> torch.dtype:
        """What `dtype="auto"` runs on this CPU: bf16 where the probe found it pays, else exact fp32."""
        return torch.bfloat16 if self.speedup is not None and bf16_pays(self.speedup) else torch.float32

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (`ettin-rerank info --json`, `bench`)."""
        return {
            "dtype": dtype_name(self.dtype),
            "bf16_speedup": self.speedup,
            "bf16_min_speedup": BF16_MIN_SPEEDUP,
            "fp32_gflops": self.fp32_gflops,
            "bf16_gflops": self.bf16_gflops,
            "threads": self.threads,
            "source": self.source,
        }

    def summary(self) -> str:
        """One phrase for people, e.g. "float32 (bf16 0.66x the speed of fp32, measured at 2 threads)"."""
        dtype = dtype_name(self.dtype)
        if self.speedup is None:
            return f"{dtype} ({self.source})"
        return (
            f"{dtype} (bf16 {self.speedup:.2f}x the speed of fp32 at {self.threads} threads, "
            f"{self.source}; bf16 needs {BF16_MIN_SPEEDUP:.2f}x)"
        )


def bf16_pays(speedup: float) -> bool:
    """The decision rule: bf16 only when it is faster than exact fp32 by `BF16_MIN_SPEEDUP` or more."""
    return speedup >= BF16_MIN_SPEEDUP


def probe_identity(kernels: CpuKernels) -> dict[str, Any]:
    """What a cached probe result holds for: this CPU, these kernels, these versions, this thread count."""
    return {
        "cpu": kernels.model_name,
        "flags": list(kernels.flags),
        "torch": torch.__version__,
        "ettin_rerank": __version__,
        "threads": torch.get_num_threads(),
    }


def bf16_probe(kernels: CpuKernels) -> Bf16Probe:
    """bf16 against fp32 on this CPU: from the cache, else measured (and cached). A CPU without native
    bf16 flags is not probed: it runs exact fp32."""
    threads = torch.get_num_threads()
    if not kernels.native_bf16:
        return Bf16Probe(None, None, None, threads, f"not probed: no {kernels.missing(NATIVE_BF16_FLAGS)}")
    identity = probe_identity(kernels)
    path = cache_dir() / CACHE_FILE
    cached = read_cached(path, identity)
    if cached is not None:
        return cached
    probe = measure_bf16()
    write_cached(path, identity, probe)
    logger.info("bf16 probe on this CPU: %s", probe.summary())
    return probe


def measure_bf16() -> Bf16Probe:
    """Time the probe's matmuls in fp32 and in bf16, alternating, at torch's current thread count: the
    median round of each after one warm-up round (well under a second on 2 cores)."""
    generator = torch.Generator().manual_seed(0)
    operands = {dtype: _probe_operands(generator, dtype) for dtype in (torch.float32, torch.bfloat16)}
    seconds: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
    with torch.inference_mode():
        for round_ in range(PROBE_REPEATS + 1):
            for dtype, ops in operands.items():
                start = time.perf_counter()
                _run_probe(ops)
                if round_:  # round 0 warms up oneDNN's kernel selection and the allocator
                    seconds[dtype].append(time.perf_counter() - start)
    fp32, bf16 = (statistics.median(seconds[dtype]) for dtype in (torch.float32, torch.bfloat16))
    flops = _probe_flops()
    return Bf16Probe(fp32 / bf16, flops / fp32 / 1e9, flops / bf16 / 1e9, torch.get_num_threads(), "measured")


def _probe_operands(generator: torch.Generator, dtype: torch.dtype) -> list[tuple[torch.Tensor, Any]]:
    """(activations, linear) per linear, each as the encoder runs it in `dtype` (`modes.prepare_model`:
    fp32 through oneDNN's packed linear where torch has it), then (queries, keys) for the attention
    scores."""
    operands: list[tuple[torch.Tensor, Any]] = []
    for tokens, fan_in, fan_out in PROBE_LINEARS:
        linear = nn.Linear(fan_in, fan_out, bias=False)
        linear.weight.data = torch.randn(fan_out, fan_in, generator=generator).to(dtype)
        runs: nn.Module = (
            OneDnnLinear(linear) if dtype == torch.float32 and onednn_linear_available() else linear
        )
        operands.append((torch.randn(tokens, fan_in, generator=generator).to(dtype), runs))
    batch, tokens, head_dim = PROBE_ATTENTION
    queries = torch.randn(batch, tokens, head_dim, generator=generator)
    keys = torch.randn(batch, head_dim, tokens, generator=generator)
    operands.append((queries.to(dtype), keys.to(dtype)))
    return operands


def _run_probe(operands: list[tuple[torch.Tensor, Any]]) -> None:
    *linears, (queries, keys) = operands
    for activations, linear in linears:
        linear(activations)
    torch.bmm(queries, keys)  # (batch, tokens, tokens)


def _probe_flops() -> float:
    batch, tokens, head_dim = PROBE_ATTENTION
    linears = sum(2 * t * fan_in * fan_out for t, fan_in, fan_out in PROBE_LINEARS)
    return float(linears + 2 * batch * tokens * head_dim * tokens)


def read_cached(path: Path, identity: dict[str, Any]) -> Bf16Probe | None:
    """The cached probe for `identity`, or None when the file is missing, corrupt, of another format
    or holds no such entry."""
    try:
        for entry in _cached_entries(path):
            if entry["identity"] == identity:
                result = entry["result"]
                return Bf16Probe(
                    float(result["speedup"]),
                    float(result["fp32_gflops"]),
                    float(result["bf16_gflops"]),
                    int(result["threads"]),
                    "cache",
                )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.info("bf16 probe cache %s is unreadable (%s): measuring again", path, error)
    return None


def write_cached(path: Path, identity: dict[str, Any], probe: Bf16Probe) -> None:
    """Keep `probe` for `identity`, beside the entries for other thread counts on this same CPU and
    versions (foreign ones are dropped). Written atomically: two processes probing at once each
    leave a whole file. A cache that cannot be written only costs a probe next time."""
    same_machine = _without_threads(identity)
    try:
        kept = [
            entry
            for entry in _cached_entries(path)
            if _without_threads(entry["identity"]) == same_machine and entry["identity"] != identity
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        kept = []  # missing or corrupt: replaced whole
    result = {key: value for key, value in asdict(probe).items() if key != "source"}
    document = {"format": CACHE_FORMAT, "entries": [*kept, {"identity": identity, "result": result}]}
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
            temporary = handle.name
            json.dump(document, handle, indent=1)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("could not cache the bf16 probe in %s (%s): it will be measured again", path, error)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _cached_entries(path: Path) -> list[dict[str, Any]]:
    """The cache file's entries; ValueError, KeyError or TypeError when it is corrupt or foreign."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if document["format"] != CACHE_FORMAT:
        raise ValueError(f"format {document['format']!r}, not {CACHE_FORMAT}")
    entries = document["entries"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TypeError("entries is not a list of objects")
    return entries


def _without_threads(identity: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in identity.items() if key != "threads"}
