"""The int8 CPU mode: fbgemm's dynamic int8 linears, smoothed so that a few outlier channels do not
set every token's quantization step.

fbgemm quantizes a linear's input with one scale per call. A transformer's hidden states carry a few
channels far larger than the rest (on the bundled model one FFN input channel reaches 28 where the
median channel reaches 2), so that scale leaves the ordinary channels a handful of levels. SmoothQuant
(Xiao et al., 2023) moves the range from the activations into the weights: input channel j is divided
by s_j and the weight's column j multiplied by it, s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha), an
identity in exact arithmetic. The maxima come from one exact pass over fixed calibration pairs
(`int8_calibration.json`), so a pair's int8 score does not depend on what was scored before it.

Measured on the bundled model, 1,000 SciFact pairs (10 queries x 100 documents), against exact fp32,
2 threads, AMD EPYC with AVX512_VNNI, ranges from 200 other SciFact pairs (docs/speed.md; the variants
again with the shipped calibration: `benchmarks/int8_variants.py`):

| int8 variant | x exact | Spearman | top-10 |
|---|---:|---:|---:|
| fbgemm, one scale per call (before) | 2.0-2.4 | 0.9936 | 0.89 |
| one scale per token (`_int_mm`, unfused) | 1.4-1.5 | 0.9972 | 0.92 |
| smoothed, alpha 0.5 / 0.7 / 0.8 / 0.85 / 0.9 / 1.0 | 2.3-2.6 | 0.980 / 0.998 / 0.998 / 0.998 / 0.998 / 0.998 | 0.87 / 0.91 / 0.95 / 0.95 / 0.94 / 0.92 |
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
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


def smoothing_factors(
    linear: nn.Linear, input_range: torch.Tensor, alpha: float = SMOOTHING_ALPHA
) -> torch.Tensor:
    """SmoothQuant's s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha), one per input channel."""
    weight_range = linear.weight.detach().float().abs().amax(dim=0).clamp_min(MIN_RANGE)
    return (input_range.clamp_min(MIN_RANGE) ** alpha / weight_range ** (1 - alpha)).clamp_min(MIN_RANGE)


@torch.no_grad()
def linear_input_ranges(
    model: CrossEncoderModel, batches: Sequence[PackedInputs]
) -> dict[nn.Linear, torch.Tensor]:
    """max |input| per channel of every `nn.Linear` in the encoder, over `batches` run through it."""
    ranges: dict[nn.Linear, torch.Tensor] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        assert isinstance(module, nn.Linear)
        x = inputs[0].detach().float()
        seen = x.reshape(-1, x.shape[-1]).abs().amax(dim=0)  # (tokens, in) -> (in,)
        ranges[module] = torch.maximum(ranges[module], seen) if module in ranges else seen

    linears = [m for m in model.encoder.modules() if type(m) is nn.Linear]
    hooks = [linear.register_forward_hook(record) for linear in linears]
    try:
        for batch in batches:
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return ranges


def quantize_linears_int8(
    module: nn.Module,
    input_ranges: dict[nn.Linear, torch.Tensor] | None = None,
    alpha: float = SMOOTHING_ALPHA,
) -> nn.Module:
    """Swap every nn.Linear inside `module` for an `Int8Linear` (in place); outputs stay fp32. With
    `input_ranges` (from `linear_input_ranges`), each is smoothed at strength `alpha` (module docstring).

    Weights: one scale per output channel (one per tensor let a few large rows crush the rest: top-10
    agreement 0.74 on the bundled model). Activations: one scale per call, all 8 bits where fbgemm
    sums in 32 bits (7 bits: Spearman 0.979, top-10 0.87 on the bundled model).
    """
    reduce_range = not cpu_kernels().fbgemm_full_range_int8  # 7-bit activations where fbgemm may saturate
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:
            smoothing = None
            if input_ranges is not None:
                smoothing = smoothing_factors(child, input_ranges[child], alpha)
            setattr(module, name, Int8Linear(child, reduce_range, smoothing))
        else:
            quantize_linears_int8(child, input_ranges, alpha)
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
