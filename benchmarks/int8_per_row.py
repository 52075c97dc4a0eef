"""int8 with one activation scale per row, through fbgemm, against the per-tensor mode and exact fp32.

    PYTHONPATH=src python benchmarks/int8_per_row.py [--model DIR] [--rounds 3]

The per-row variant divides each row by its absolute maximum before fbgemm's per-tensor
quantization and multiplies the output rows back (bias after). Same run, alternating rounds,
1,000 SciFact pairs (`beir_short_pairs(scifact, 10, 100, seed 0)`), 2 threads (docs/speed.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ettin_rerank import Reranker
from ettin_rerank.benchmarking.runner import _deviation
from ettin_rerank.benchmarking.workloads import beir_short_pairs
from ettin_rerank.inference import modes

TINY = torch.finfo(torch.float32).tiny


class PerRowInt8(torch.nn.Module):
    """The int8 mode's own `modes.Int8Linear` (same weights, same activation bits), fed each row
    divided by its absolute maximum, the output rows multiplied back and the bias added after."""

    def __init__(self, int8: modes.Int8Linear):
        super().__init__()
        weight, self.output_bias = int8._packed_params._weight_bias()
        int8.set_weight_bias(weight, None)
        self.int8 = int8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row_max = x.abs().amax(dim=-1, keepdim=True).clamp_min(TINY)  # (rows, 1)
        out = self.int8(x / row_max)  # (rows, out_features)
        return (
            out.mul_(row_max) if self.output_bias is None else torch.addcmul(self.output_bias, out, row_max)
        )


def per_row(model: torch.nn.Module) -> None:
    """Wrap every int8 linear of a model loaded with quantize="int8", in place."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, modes.Int8Linear):
                setattr(parent, name, PerRowInt8(child))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="a model directory (default: the bundled model)")
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    pairs = beir_short_pairs(args.data, num_queries=10, docs_per_query=100, seed=0)
    groups = [np.arange(start, start + 100) for start in range(0, len(pairs), 100)]
    engines = {
        "exact": Reranker.from_pretrained(args.model, dtype="float32"),
        "int8 per tensor": Reranker.from_pretrained(args.model, dtype="float32", quantize="int8"),
        "int8 per row": Reranker.from_pretrained(args.model, dtype="float32", quantize="int8"),
    }
    per_row(engines["int8 per row"].model.encoder)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, reranker in engines.items():
            started = time.perf_counter()
            scores[name] = np.asarray(reranker.score_pairs(pairs))
            seconds[name].append(time.perf_counter() - started)
    exact_s = float(np.median(seconds["exact"]))
    for name, got in scores.items():
        median = float(np.median(seconds[name]))
        deviation = _deviation(got, scores["exact"].astype(np.float64), groups)  # bench's own figures
        print(
            f"{name:16s} {len(pairs) / median:6.1f} pairs/s {exact_s / median:5.2f}x exact  "
            f"Spearman {deviation['spearman']:.4f}  top-10 {deviation['top10_agreement']:.3f}  "
            f"max|diff| {deviation['max_abs_diff']:.3f}"
        )


if __name__ == "__main__":
    main()
