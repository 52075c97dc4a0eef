"""The int8 CPU mode: the encoder's linears in int8, smoothed so that a few outlier channels do not
set every token's quantization step, with activation scales fixed in calibration.

A transformer's hidden states carry a few channels far larger than the rest (on the bundled model
one FFN input channel reaches 28 where the median channel reaches 2), so one activation scale per
tensor leaves the ordinary channels a handful of levels. SmoothQuant (Xiao et al., 2023) moves the
range from the activations into the weights: input channel j is divided by s_j and the weight's
column j multiplied by it, s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha), an identity in exact
arithmetic. The ranges come from one exact pass over fixed calibration pairs (`int8_calibration.json`).

Where torch has oneDNN's int8 linear (x86 builds), each linear is a `OneDnnInt8Linear`: its
activation scale and zero point are fixed from those ranges too (static quantization, as OpenVINO's
NNCF int8 does), so a pair's score never depends on the pairs batched with it and no pass finds a
range at run time. Elsewhere fbgemm's dynamic linear (`Int8Linear`) finds one scale per call.
Linears that read only each pair's first token stay fp32 (`quantize_linears_int8`).

Measured on the bundled model, 1,000 SciFact pairs (10 queries x 100 documents), against exact fp32,
2 threads, AMD EPYC with AVX512_VNNI (`benchmarks/int8_variants.py`; the alpha sweep with ranges from
200 other SciFact pairs, docs/speed.md):

| int8 variant | x exact | Spearman | top-10 |
|---|---:|---:|---:|
| fbgemm, one scale per call, unsmoothed (before issue 23) | 2.12 | 0.9935 | 0.91 |
| one scale per token (`_int_mm`, unfused) | 0.97 | 0.9973 | 0.92 |
| fbgemm, one scale per call, smoothed alpha 0.85 | 1.57 | 0.9975 | 0.93 |
| **oneDNN, static scale, smoothed alpha 0.85, first-token linears fp32 (the mode)** | **1.67** | **0.9980** | **0.93** |
| smoothed (fbgemm), alpha 0.5 / 0.7 / 0.8 / 0.85 / 0.9 / 1.0 | 2.3-2.6 | 0.980 / 0.998 / 0.998 / 0.998 / 0.998 / 0.998 | 0.87 / 0.91 / 0.95 / 0.95 / 0.94 / 0.92 |

(the last row before exact mode ran through oneDNN, at batches of 4,096 tokens: its ratio is against
a slower exact.) Over five samples (seeds 0 and 2-5) the mode keeps a mean Spearman 0.9984 and top-10
0.952 (0.93-0.97 per sample); alpha 0.8 and 0.9, 0.936 and 0.948 (docs/speed.md).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.encoder import PackedInputs
from .batching import pack
from .cpu import cpu_kernels
from .tokenization import PairTokenizer

# how much of each outlier channel's range moves into the weights (0: none, 1: all); measured above
SMOOTHING_ALPHA = 0.85
CALIBRATION_FILE = Path(__file__).with_name("int8_calibration.json")
TINY = torch.finfo(torch.float32).tiny
MIN_RANGE = 1e-5  # SmoothQuant's floor for a channel's range (a channel never seen active)


def _int8_weight_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 weights, one scale per output channel: (out, in) int8 and (out,) fp32 scales."""
    scales = weight.abs().amax(dim=1).clamp_min(TINY) / 127  # weight: (out_features, in_features)
    return torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8), scales


class Int8Linear(torch.ao.nn.quantized.dynamic.Linear):
    """fbgemm's dynamic int8 linear (weights per output channel; activations one scale per call,
    found on the fly), with the activations' full 8 bits where the CPU has VNNI, and an optional
    smoothing of the input channels.

    torch.ao's own module always passes `reduce_range=True` (7-bit activations), which fbgemm needs
    only where int8 products are summed through saturating 16-bit adds (AVX2 without VNNI). On the
    bundled model those 7 bits alone cost Spearman 0.979 -> 0.995 against exact (issue 23).
    `smoothing` (in_features,): the input is divided by it and the weight's columns multiplied by it.
    """

    def __init__(self, linear: nn.Linear, reduce_range: bool, smoothing: torch.Tensor | None = None):
        weight = linear.weight.detach().float()  # (out_features, in_features)
        if smoothing is not None:
            weight = weight * smoothing[None, :]
        qweight, scales = _int8_weight_per_channel(weight)
        zero_points = torch.zeros(linear.out_features, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation notice on quantized tensor creation
            super().__init__(
                linear.in_features, linear.out_features, linear.bias is not None, dtype=torch.qint8
            )
            packed = torch._make_per_channel_quantized_tensor(qweight, scales.double(), zero_points, 0)
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.set_weight_bias(packed, bias)
        self.reduce_range = reduce_range
        self.input_multiplier = None if smoothing is None else (1 / smoothing).float()

    @property
    def packed_numel(self) -> int:
        """Weights held in fbgemm's packed parameters, outside `parameters()`."""
        return self.in_features * self.out_features + (self.out_features if self.bias() is not None else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_multiplier is not None:
            x = x * self.input_multiplier
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, self.reduce_range)


@dataclass(frozen=True)
class ChannelRange:
    """The smallest and largest value each input channel of a linear took in calibration, (in,) each;
    `every_token`: the linear read every token (False: only each pair's first, as the last layer
    under a CLS-pooling head does)."""

    low: torch.Tensor
    high: torch.Tensor
    every_token: bool = True

    @property
    def absmax(self) -> torch.Tensor:
        return torch.maximum(-self.low, self.high)

    def widen(self, other: ChannelRange) -> ChannelRange:
        every_token = self.every_token and other.every_token
        return ChannelRange(
            torch.minimum(self.low, other.low), torch.maximum(self.high, other.high), every_token
        )


def smoothing_factors(
    linear: nn.Linear, input_range: torch.Tensor, alpha: float = SMOOTHING_ALPHA
) -> torch.Tensor:
    """SmoothQuant's s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha), one per input channel;
    `input_range`: max |x_j| (in,)."""
    weight_range = linear.weight.detach().float().abs().amax(dim=0).clamp_min(MIN_RANGE)
    return (input_range.clamp_min(MIN_RANGE) ** alpha / weight_range ** (1 - alpha)).clamp_min(MIN_RANGE)


@torch.no_grad()
def linear_input_ranges(
    model: CrossEncoderModel, batches: Sequence[PackedInputs]
) -> dict[nn.Linear, ChannelRange]:
    """Each input channel's range for every `nn.Linear` in the encoder, over `batches` run through it."""
    ranges: dict[nn.Linear, ChannelRange] = {}
    tokens = 0  # of the batch being run

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        assert isinstance(module, nn.Linear)
        rows = inputs[0].detach().float().reshape(-1, module.in_features)  # (..., in) -> (tokens, in)
        seen = ChannelRange(rows.amin(dim=0), rows.amax(dim=0), len(rows) == tokens)
        ranges[module] = ranges[module].widen(seen) if module in ranges else seen

    linears = [m for m in model.encoder.modules() if type(m) is nn.Linear]
    hooks = [linear.register_forward_hook(record) for linear in linears]
    try:
        for batch in batches:
            tokens = int(batch.input_ids.numel())
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return ranges


@cache
def onednn_int8_available() -> bool:
    """torch has oneDNN's int8 linear (x86 CPU builds with oneDNN)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise")


@cache
def _take_the_deprecation_notice() -> None:
    """torch warns once per process that quantized tensors are deprecated (pytorch#184982). Int8 mode
    uses `quantize_per_tensor` only as float -> uint8 rounding (2.3x faster than add, round, clamp and
    convert) under a pinned torch: the notice is taken here, not printed in a user's first search."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.quantize_per_tensor(torch.zeros(1), 1.0, 0, torch.quint8)


def _uint8_view(quantized: torch.Tensor) -> torch.Tensor:
    """A quint8 tensor's bytes as a uint8 tensor, without the copy `int_repr()` makes (which cost
    more than the quantization itself: 1.2 ms against 0.15 for 2,048 x 1,536 values)."""
    return torch.empty(0, dtype=torch.uint8).set_(
        quantized.untyped_storage(), quantized.storage_offset(), quantized.shape, quantized.stride()
    )


class OneDnnInt8Linear(nn.Module):
    """oneDNN's int8 linear with a static activation scale: what int8 mode runs where torch has it.

    Weights int8, one symmetric scale per output channel (after smoothing). Activations uint8 with one
    scale and zero point fixed from the calibration range (after smoothing), as OpenVINO's NNCF
    int8 does: a pair's score does not depend on the other pairs of its batch, and no pass over the
    input finds its range. An input beyond the calibrated range saturates. Where the CPU has no VNNI
    (AVX2's multiply-adds saturate 16-bit sums) the activations keep 7 bits, as oneDNN asks.
    The weight is packed outside `parameters()` (`packed_numel` counts it); CPU and fp32 only.
    """

    def __init__(
        self, linear: nn.Linear, input_range: ChannelRange, smoothing: torch.Tensor | None, levels: int
    ):
        super().__init__()
        _take_the_deprecation_notice()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()  # (out_features, in_features)
        smoothing = torch.ones(self.in_features) if smoothing is None else smoothing.detach().float()
        qweight, weight_scales = _int8_weight_per_channel(weight * smoothing[None, :])
        self.packed_weight = torch.ops.onednn.qlinear_prepack(qweight, None)
        self.weight_scales = weight_scales.float()
        self.weight_zero_points = torch.zeros(self.out_features, dtype=torch.long)
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        # the smoothed input's range over all channels, widened to hold 0 (exact zero padding, ReLU)
        low = min(float((input_range.low.detach() / smoothing).min()), 0.0)
        high = max(float((input_range.high.detach() / smoothing).max()), 0.0)
        self.scale = max(high - low, MIN_RANGE) / (levels - 1)
        self.zero_point = round(-low / self.scale)
        self.levels = levels
        # dividing by the smoothing and by the step in one multiply: quantize_per_tensor then rounds
        self.input_multiplier = 1 / (smoothing * self.scale)

    @property
    def packed_numel(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias is not None else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)  # (..., in) -> (tokens, in)
        quantized = _uint8_view(
            torch.quantize_per_tensor(rows * self.input_multiplier, 1.0, self.zero_point, torch.quint8)
        )  # saturated at 0..255
        if self.levels < 256:  # the same bytes as clamping the fp32 steps, in a pass over a quarter of them
            quantized.clamp_(max=self.levels - 1)
        out = torch.ops.onednn.qlinear_pointwise(
            quantized,
            self.scale,
            self.zero_point,
            self.packed_weight,
            self.weight_scales,
            self.weight_zero_points,
            self.bias,
            1.0,  # output scale and zero point: unused for a float output
            0,
            torch.float32,
            "none",
            [],
            "",
        )
        return out.reshape(*x.shape[:-1], self.out_features)  # (tokens, out) -> (..., out)


INT8_LINEARS = (Int8Linear, OneDnnInt8Linear)


def activation_levels() -> int:
    """The uint8 levels int8 activations use on this CPU: all 256 where int8 products are summed in 32
    bits (VNNI, AMX); 128 on AVX2, whose multiply-adds sum pairs of them in saturating 16-bit adds."""
    return 256 if cpu_kernels().fbgemm_full_range_int8 else 128


def quantize_linears_int8(
    module: nn.Module,
    input_ranges: dict[nn.Linear, ChannelRange],
    alpha: float | None = SMOOTHING_ALPHA,
    static: bool | None = None,
) -> nn.Module:
    """Swap the nn.Linears inside `module` for int8 linears (in place); outputs stay fp32.
    `input_ranges` (from `linear_input_ranges`) smooth each at strength `alpha` (None: unsmoothed;
    module docstring) and, `static`, fix its activation scale: `OneDnnInt8Linear`, the default where
    torch has it; else fbgemm's `Int8Linear`, one activation scale per call.

    A linear that reads only each pair's first token stays fp32: it costs next to nothing, and on the
    bundled model the last layer's query alone, in int8, moved scores by 0.074 RMS where any other
    linear moved them by 0.003-0.043 (333 SciFact pairs, score std 0.83).

    Weights: one scale per output channel (one per tensor let a few large rows crush the rest: top-10
    agreement 0.74 on the bundled model). Activations: all 8 bits where the CPU sums int8 products in
    32 bits (7 bits on fbgemm: Spearman 0.979, top-10 0.87 on the bundled model).
    """
    static = onednn_int8_available() if static is None else static
    levels = activation_levels()
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear and input_ranges[child].every_token:
            smoothing = None if alpha is None else smoothing_factors(child, input_ranges[child].absmax, alpha)
            if static:
                setattr(
                    module,
                    name,
                    OneDnnInt8Linear(child, input_ranges[child], smoothing, levels),
                )
            else:
                setattr(module, name, Int8Linear(child, levels < 256, smoothing))
        else:
            quantize_linears_int8(child, input_ranges, alpha, static)
    return module


@cache
def calibration_pairs() -> tuple[tuple[str, str], ...]:
    """The int8 calibration pairs: each query with its passage followed by 0, 1 or 2 of the next
    passages, so that the positions of a long pair are seen as well as those of a short one."""
    raw = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["pairs"]
    pairs = []
    for i, (query, _) in enumerate(raw):
        passages = [raw[(i + k) % len(raw)][1] for k in range(1 + i % 3)]
        pairs.append((query, " ".join(passages)))
    return tuple(pairs)


def calibration_batches(tokenizer: PairTokenizer) -> list[PackedInputs]:
    """The calibration pairs tokenized by the model's own tokenizer, one packed batch."""
    encoded = tokenizer.encode_pairs(calibration_pairs())
    return [pack(encoded, np.arange(len(encoded.input_ids)))]
