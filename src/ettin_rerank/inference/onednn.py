"""Exact fp32 linears through oneDNN with weights packed once: what exact mode runs on a CPU.

`nn.Linear` on a CPU calls the BLAS torch was built with (MKL in the x86 wheels), which reached
142-189 GFLOP/s on a 2-vCPU AMD EPYC (AVX-512) where oneDNN, torch's other CPU kernel library (its
bf16 path, Inductor's CPU freezing), reached 380-460 on the same products with the weight reordered
once into its blocked layout. End to end, exact mode scored 1.70x faster on the bundled model and
1.55x on a random Ettin 17m (`benchmarks/exact_linears.py`), and OpenVINO's fp32 had been 2.2x our
exact there for this reason. The product is the same fp32 sum in another order: scores move by float
rounding only (max 3.3e-6 on the bundled model, 2.1e-7 on the 17m).

`nn.Linear` stays the reference: a model lent to `Reranker(...)` as it is, and training, run it.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn


@cache
def onednn_linear_available() -> bool:
    """torch was built with oneDNN and has its packed linear (every x86 and aarch64 CPU wheel)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class OneDnnLinear(nn.Module):
    """An `nn.Linear` for inference whose fp32 CPU weight oneDNN has reordered into its own layout.

    Moved or cast (`.to`, `.bfloat16()`), it unpacks the weight, converts it like any parameter and
    packs it again only in fp32 on a CPU; in any other dtype or device it runs `F.linear`, so a
    prepared model can still be lent to `Reranker(...)` in bf16. The weight is held outside
    `parameters()` (`packed_numel` counts it), so the module is not for training or saving.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.weight = self._packed(linear.weight.detach())  # (out_features, in_features)

    @staticmethod
    def _packed(weight: torch.Tensor) -> torch.Tensor:
        """oneDNN's layout for an fp32 CPU weight; any other weight as it is."""
        if weight.dtype == torch.float32 and weight.device.type == "cpu":
            return torch.ops.mkldnn._reorder_linear_weight(weight)
        return weight

    def plain_weight(self) -> torch.Tensor:
        """The weight in torch's own (out_features, in_features) layout."""
        return self.weight.to_dense() if self.weight.is_mkldnn else self.weight

    @property
    def packed_numel(self) -> int:
        return self.in_features * self.out_features

    def _apply(self, fn, recurse=True):  # nn.Module's own (untyped) signature
        self.weight = self._packed(fn(self.plain_weight()))
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.weight.is_mkldnn or x.dtype != torch.float32:
            return nn.functional.linear(x, self.plain_weight(), self.bias)
        rows = x.reshape(-1, self.in_features)  # (..., in) -> (tokens, in)
        out = torch.ops.mkldnn._linear_pointwise(rows, self.weight, self.bias, "none", [], "")
        return out.reshape(*x.shape[:-1], self.out_features)  # (tokens, out) -> (..., out)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


def pack_linears_onednn(module: nn.Module) -> nn.Module:
    """Swap every fp32 CPU nn.Linear inside `module` for a `OneDnnLinear` (in place)."""
    for name, child in list(module.named_children()):
        if (
            type(child) is nn.Linear
            and child.weight.dtype == torch.float32
            and child.weight.device.type == "cpu"
        ):
            setattr(module, name, OneDnnLinear(child))
        else:
            pack_linears_onednn(child)
    return module


def unpack_linears_onednn(module: nn.Module) -> nn.Module:
    """Swap every `OneDnnLinear` inside `module` back for the `nn.Linear` it was (in place): the
    reference path, through torch's BLAS."""
    for name, child in list(module.named_children()):
        if isinstance(child, OneDnnLinear):
            plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
            plain.weight.data = child.plain_weight()
            if child.bias is not None:
                plain.bias.data = child.bias.data
            setattr(module, name, plain.requires_grad_(False))
        else:
            unpack_linears_onednn(child)
    return module
