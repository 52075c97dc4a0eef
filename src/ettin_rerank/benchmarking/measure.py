"""Timing, FLOP counts, a measured matmul peak and peak memory."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..inference.onednn import OneDnnLinear, onednn_linear_available


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 5) -> float:
    """Median GFLOP/s of a square matmul on this machine with torch's current thread count, through
    the kernels exact mode uses (fp32: oneDNN's packed linear where torch has it, else torch's BLAS)."""
    a = torch.randn(size, size).to(dtype)
    linear = torch.nn.Linear(size, size, bias=False).to(dtype)
    product: torch.nn.Module = (
        OneDnnLinear(linear) if dtype == torch.float32 and onednn_linear_available() else linear
    )
    rates = []
    with torch.inference_mode():
        product(a)
        for _ in range(repeats):
            start = time.perf_counter()
            product(a)
            rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


@dataclass(frozen=True)
class EncoderShape:
    """What the FLOP count of a ModernBERT-style encoder needs."""

    num_layers: int
    hidden: int
    intermediate: int  # GLU half-width
    global_layers: int
    window: int | None  # full sliding window width (local layers), None if all layers are global

    @classmethod
    def from_config(cls, config) -> EncoderShape:
        layer_types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
        n_global = sum(t == "full_attention" for t in layer_types)
        return cls(
            num_layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            global_layers=n_global,
            window=getattr(config, "local_attention", None) if n_global < config.num_hidden_layers else None,
        )


def useful_flops(shape: EncoderShape, lengths: np.ndarray, glu: bool = True) -> float:
    """FLOPs the model needs for these sequence lengths (no padding, windows honoured).

    Linear layers: 2 x weights x tokens. Attention: 4 x hidden x (keys seen) per query
    (scores and weighted sum). The same count is used for every engine, so GFLOP/s compares
    how fast each one does the same useful work.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    h, i = shape.hidden, shape.intermediate
    weights = 3 * h * h + h * h + (2 * i if glu else i) * h + i * h
    linear = 2.0 * weights * lengths.sum() * shape.num_layers
    attention = 4.0 * h * (lengths**2).sum() * shape.global_layers
    if shape.window is not None:
        keys = np.minimum(lengths, shape.window + 1)
        attention += 4.0 * h * (lengths * keys).sum() * (shape.num_layers - shape.global_layers)
    return float(linear + attention)


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak resident memory (and CUDA peak allocation) while the block runs, sampled every `interval` s."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_rss = 0
        self.start_rss = 0
        self.cuda_peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, current_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.start_rss = self.peak_rss = current_rss_bytes()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, current_rss_bytes())
        if torch.cuda.is_available():
            self.cuda_peak = torch.cuda.max_memory_allocated()


@contextmanager
def timed():
    box: dict[str, float] = {}
    start = time.perf_counter()
    yield box
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    box["seconds"] = time.perf_counter() - start


def median_rate(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)
