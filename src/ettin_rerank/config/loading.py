"""How a reranker is loaded and run: device, precision, int8, batch budget, long documents."""

from __future__ import annotations

from dataclasses import dataclass

AUTO_DTYPE = "auto"  # bf16 where it has native kernels (Ampere+ CUDA, AVX512_BF16/AMX CPUs), else exact fp32
# names a user may write for a precision -> the torch dtype's name
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}
QUANTIZE_MODES = (None, "int8")


def dtype_name(dtype: object) -> str:
    """A torch dtype as reports and `DTYPE_NAMES` spell it: torch.float32 -> "float32"."""
    return str(dtype).removeprefix("torch.")


# Real tokens per batch. Packed batches have no padding, so this bounds activation memory. On a CPU,
# 2,048: a batch of 8,192 makes the FFN's (tokens, 1536) activations 50 MB, above glibc's largest mmap
# threshold (32 MB), so every such tensor is fresh pages faulted in; bundled model, 1,000 SciFact pairs,
# 2 threads, AVX-512 EPYC, one run: exact 41.2 / 45.4 / 54.2 / 48.1 pairs/s and int8 43.5 / 60.5 / 80.8
# / 78.3 at 8,192 / 4,096 / 2,048 / 1,024 tokens (docs/speed.md).
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 131072}
LONG_DOCUMENT_MODES = ("truncate", "chunk")
ACTIVATIONS = (None, "identity", "sigmoid", "calibrated")
PROGRESS_FROM_PAIRS = 10_000  # calls scoring fewer pairs show no progress bar unless asked
# Commands whose --dtype defaults to "auto" instead of the library's exact default: the main job and
# the service, where speed is what a user waits on. On the bundled model auto kept Spearman 0.99994
# and top-10 agreement 1.0 against exact on an AVX512_BF16 CPU (issue 14); on CPUs without native
# bf16 it is exact. Evaluation, calibration and benchmarks keep exact scores unless asked.
AUTO_DTYPE_COMMANDS = ("search", "serve")


@dataclass(frozen=True)
class LoadingOptions:
    """What `Reranker.from_pretrained` decides when a caller names nothing (its parameters' defaults)."""

    device: str = "cpu"
    dtype: str = "float32"  # exact; see AUTO_DTYPE
    max_length: int | None = None  # tokens per pair; None: the model's
    quantize: str | None = None  # a QUANTIZE_MODES entry
    num_threads: int | None = None  # torch's CPU threads, process-wide; None: torch's own
    attention: str | None = None  # an attention backend; None: the fastest for the device and dtype
    batch_tokens: int | None = None  # real tokens per batch; None: DEFAULT_BATCH_TOKENS of the device


LOADING = LoadingOptions()
