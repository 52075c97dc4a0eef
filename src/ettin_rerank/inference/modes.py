"""The device, encoder dtype and int8 mode a model really runs in: decided here alone.

`dtype="auto"` has one rule (`auto_dtype`), used by loading and by training's autocast: bf16 where
it is measured to pay on a CPU (`cpu_probe.py`) or supported on a CUDA GPU. Asking for bf16 on a CPU
without native bf16 kernels is warned about in one place (`warn_slow_bf16`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch

from ..config.loading import AUTO_DTYPE, DTYPE_NAMES, QUANTIZE_MODES
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.encoder import PackedInputs
from .allocator import keep_freed_memory
from .cpu import NATIVE_BF16_FLAGS, cpu_kernels
from .cpu_probe import Bf16Probe, bf16_probe
from .int8 import INT8_LINEARS, linear_input_ranges, quantize_linears_int8
from .onednn import onednn_linear_available, pack_linears_onednn

logger = logging.getLogger(__name__)

DTYPES = {name: getattr(torch, torch_name) for name, torch_name in DTYPE_NAMES.items()}


def check_quantize(quantize: str | None) -> str | None:
    """A `QUANTIZE_MODES` entry ("none" and "" read as None)."""
    if quantize is not None:
        quantize = str(quantize).lower()
    if quantize in ("none", ""):
        quantize = None
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    return quantize


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A `DTYPES` name or torch dtype as a torch dtype; "auto" stays "auto"."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower()
    if name == AUTO_DTYPE:
        return AUTO_DTYPE
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(
            f"unsupported dtype {dtype!r}; choose one of {sorted([AUTO_DTYPE, *DTYPES])}"
        ) from None


def resolve_modes(
    device: str | torch.device, dtype: str | torch.dtype, quantize: str | None
) -> tuple[torch.device, torch.dtype, str | None]:
    """The device, encoder dtype and int8 mode a model will really run in.

    `dtype="auto"` is `auto_dtype(device)`, and exact fp32 with `quantize="int8"` (int8 linears take
    fp32 activations). bf16 asked for on a CPU without native bf16 runs exact fp32 and warns once:
    there every bf16 matmul is converted back to fp32 (0.40x of exact, measured on an AVX2 EPYC), so
    it would be slower and less exact.
    """
    device = torch.device(device)
    quantize = check_quantize(quantize)
    wanted = parse_dtype(dtype)
    if quantize == "int8" and (device.type != "cpu" or wanted not in (AUTO_DTYPE, torch.float32)):
        raise ValueError(
            "quantize='int8' is a CPU mode with float32 activations; use device='cpu' and dtype='float32' "
            "(on CUDA use dtype='bfloat16' instead)"
        )
    if wanted == AUTO_DTYPE:
        return device, torch.float32 if quantize else auto_dtype(device), quantize
    if device.type == "cpu" and wanted == torch.bfloat16 and not cpu_kernels().native_bf16:
        warn_slow_bf16(fell_back=True)
        return device, torch.float32, quantize
    assert isinstance(wanted, torch.dtype)
    return device, wanted, quantize


def auto_dtype(device: str | torch.device) -> torch.dtype:
    """The one `auto` rule: bf16 on a CUDA GPU with native bf16 (Ampere and newer; torch emulates it
    on older ones, slower than fp32); on a CPU, bf16 only where it has native
    bf16 kernels and the probe measured bf16 clearly faster than exact fp32 at torch's current thread
    count (`cpu_auto_probe`); exact fp32 elsewhere, so `auto` is never a mode slower than exact.
    int8 is not part of `auto`: the extra depth its speed buys `search` under a time budget did not
    raise NDCG@10 measurably on SciFact, and it costs a calibration pass at load (docs/speed.md,
    "Would int8 make the main job rank better?")."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float32
    if device.type == "cpu":
        return cpu_auto_probe().dtype
    return torch.float32


def cpu_auto_probe() -> Bf16Probe:
    """What `auto` reads on this CPU: bf16 against fp32, cached or measured (`cpu_probe.bf16_probe`);
    `ettin-rerank info` and `bench` show it."""
    return bf16_probe(cpu_kernels())


def resolve_dtype(
    dtype: str | torch.dtype, device: str | torch.device = "cpu", quantize: str | None = None
) -> torch.dtype:
    """The encoder dtype `dtype` runs as on `device` (see `resolve_modes`)."""
    return resolve_modes(device, dtype, quantize)[1]


@functools.cache
def warn_slow_bf16(fell_back: bool) -> None:
    """Once per process and case: bf16 on a CPU that runs it slowly. `fell_back`: loading chose exact
    fp32 instead; else a model lent in bf16 runs as given."""
    kernels = cpu_kernels()
    what = (
        "running exact float32 instead, which is faster here"
        if fell_back
        else "a model lent in bfloat16 runs as given; expect it to be slower than float32"
    )
    logger.warning(
        "dtype=bfloat16, but this CPU has no native bf16 kernels (no %s; torch capability %s): %s. "
        "quantize='int8' is the fast CPU mode on this machine.",
        kernels.missing(NATIVE_BF16_FLAGS),
        kernels.torch_capability,
        what,
    )


def prepare_model(
    model: CrossEncoderModel,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    quantize: str | None = None,
    int8_calibration: Sequence[PackedInputs] = (),
) -> CrossEncoderModel:
    """Put a model the caller owns into an inference mode, in place: the encoder on `device` in
    `dtype` (optionally with int8 linears on CPU), the head in fp32, eval mode. Exact fp32 on a CPU
    runs the encoder's linears through oneDNN with packed weights (`onednn.py`: the same fp32
    products, faster than torch's BLAS). On a CPU, glibc's malloc is set (once per process) to keep
    freed activation buffers for the next batch instead of faulting them in again (`allocator.py`).

    `dtype` and `quantize` are resolved by `resolve_modes`. int8 needs `int8_calibration`, the
    batches its linears' input ranges are measured on: `int8.calibration_batches(tokenizer)`.
    `Reranker.from_pretrained` does this to the model it loads; a caller lending its own model to
    `Reranker(...)` does it first (on a copy, if the original must stay as it is).
    """
    device, dtype, quantize = resolve_modes(device, dtype, quantize)
    model.encoder.to(device=device, dtype=dtype)
    model.head.to(device=device, dtype=torch.float32)  # the head always runs in fp32
    model.eval()
    if quantize == "int8":
        if not int8_calibration:
            raise ValueError("quantize='int8' needs int8_calibration: int8.calibration_batches(tokenizer)")
        ranges = linear_input_ranges(model, int8_calibration)
        quantize_linears_int8(model.encoder, ranges)  # the head and every activation stay fp32
    if device.type == "cpu" and dtype == torch.float32 and onednn_linear_available():
        pack_linears_onednn(model.encoder)  # exact's linears, and those int8 keeps in fp32
    if device.type == "cpu":
        keep_freed_memory()
    return model


def is_int8_quantized(model: torch.nn.Module) -> bool:
    return any(isinstance(m, INT8_LINEARS) for m in model.modules())
