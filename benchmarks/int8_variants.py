"""The int8 mode against the variants it was chosen from, and exact fp32, on the same pairs and run.

    PYTHONPATH=src python benchmarks/int8_variants.py [--model DIR] [--rounds 3] [--seeds 0 2 3]
        [--alphas 0.5 0.7 0.8 0.85 0.9 1.0]

Variants: `int8` (the mode, inference/int8.py: oneDNN's int8 linear, smoothed, one activation scale
fixed in calibration); `int8 dynamic` (fbgemm, smoothed, one activation scale per call: the mode of
2026-12-03 morning); `int8 unsmoothed` (fbgemm without smoothing, the mode before issue 23);
`int8 per token` (one activation scale per token through torch's `_int_mm`, unfused element-wise passes).
`--variants` times a subset. Timed on
the first seed's 1,000 SciFact pairs (`beir_short_pairs(scifact, 10, 100, seed)`, the `bench`
workload), 100 pairs a round in turn, each round's engines in alternating order, 2 threads: pairs/s
from the median round, and `paired`, the median over rounds of exact's time over the variant's in
the same round (steadier than a ratio of medians on a host whose load drifts). Spearman and top-10
agreement against exact on every seed. `--alphas` adds untimed smoothed variants at other
strengths (the table in int8.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ettin_rerank import Reranker
from ettin_rerank.benchmarking.runner import _deviation, paired_ratio
from ettin_rerank.benchmarking.workloads import beir_short_pairs
from ettin_rerank.inference import int8
from ettin_rerank.inference.onednn import pack_linears_onednn, unpack_linears_onednn

TINY = torch.finfo(torch.float32).tiny
ROUND_PAIRS = 100  # pairs each engine scores per timed round
# `load`'s variants timed beside exact, by the name the table prints
TIMED_VARIANTS = {
    "int8": "int8",
    "dynamic": "int8 dynamic",
    "unsmoothed": "int8 unsmoothed",
    "per-token": "int8 per token",
}


class PerTokenInt8Linear(torch.nn.Module):
    """int8 weights per output channel, int8 activations one symmetric scale per token, `_int_mm`."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        qweight, self.weight_scales = int8._int8_weight_per_channel(linear.weight.detach().float())
        self.weight_t = qweight.t()  # (in, out), a view: `_int_mm` takes either layout
        self.bias = (
            linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (..., in) -> (tokens, in)
        scales = rows.abs().amax(dim=-1, keepdim=True).clamp_min(TINY) / 127  # (tokens, 1)
        quantized = torch.round(rows / scales).to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).float()  # (tokens, out)
        out = torch.addcmul(self.bias, out, scales * self.weight_scales)
        return out.reshape(*x.shape[:-1], -1)


def swap_linears(module: torch.nn.Module, make: Callable[[torch.nn.Linear], torch.nn.Module]) -> None:
    for name, child in list(module.named_children()):
        if type(child) is torch.nn.Linear:
            setattr(module, name, make(child))
        else:
            swap_linears(child, make)


def load(model: str | None, variant: str, alpha: float | None = None) -> Reranker:
    """`variant`: exact, int8, dynamic, unsmoothed, per-token or smoothed (static, at `alpha`)."""
    if variant == "int8":
        return Reranker.from_pretrained(model, quantize="int8")
    reranker = Reranker.from_pretrained(model, dtype="float32")
    if variant == "exact":
        return reranker
    encoder = reranker.model.encoder
    unpack_linears_onednn(encoder)  # the variants below replace nn.Linear, as int8 mode does
    if variant == "per-token":
        swap_linears(encoder, PerTokenInt8Linear)
        return reranker
    ranges = int8.linear_input_ranges(reranker.model, int8.calibration_batches(reranker.tokenizer))
    static, smoothing = {
        "dynamic": (False, int8.SMOOTHING_ALPHA),
        "unsmoothed": (False, None),
        "smoothed": (True, alpha),
    }[variant]
    int8.quantize_linears_int8(encoder, ranges, smoothing, static)
    pack_linears_onednn(encoder)  # the linears int8 keeps in fp32 run as in the mode (`modes.prepare_model`)
    return reranker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="a model directory (default: the bundled model)")
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact"
    )
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds of 100 pairs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--alphas", type=float, nargs="*", default=[])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(TIMED_VARIANTS),
        choices=list(TIMED_VARIANTS),
        help="the timed variants beside exact",
    )
    parser.add_argument("--num-queries", type=int, default=10, help="100 SciFact pairs each")
    args = parser.parse_args()
    torch.set_num_threads(2)
    samples = {
        seed: beir_short_pairs(args.data, num_queries=args.num_queries, docs_per_query=100, seed=seed)
        for seed in args.seeds
    }
    timed = samples[args.seeds[0]]
    groups = [np.arange(start, start + 100) for start in range(0, len(timed), 100)]
    engines = {"exact": load(args.model, "exact")} | {
        TIMED_VARIANTS[variant]: load(args.model, variant) for variant in args.variants
    }
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for round_index in range(args.rounds):
        start = ROUND_PAIRS * round_index % len(timed)
        chunk = timed[start : start + ROUND_PAIRS]
        order = list(engines) if round_index % 2 == 0 else list(engines)[::-1]
        for name in order:
            started = time.perf_counter()
            engines[name].score_pairs(chunk)
            seconds[name].append(time.perf_counter() - started)
    engines |= {f"smoothed {alpha}": load(args.model, "smoothed", alpha) for alpha in args.alphas}
    exact = {
        seed: np.asarray(engines["exact"].score_pairs(pairs), np.float64) for seed, pairs in samples.items()
    }
    exact_s = float(np.median(seconds["exact"]))
    print(f"{len(timed)} pairs, seeds {args.seeds}: Spearman / top-10 agreement against exact per seed")
    for name, reranker in engines.items():
        fidelity = []
        for seed, pairs in samples.items():
            deviation = _deviation(np.asarray(reranker.score_pairs(pairs)), exact[seed], groups)  # bench's
            fidelity.append(f"{deviation['spearman']:.4f} / {deviation['top10_agreement']:.2f}")
        speed = ""
        if seconds.get(name):
            median = float(np.median(seconds[name]))
            paired = paired_ratio(seconds["exact"], seconds[name])
            speed = (
                f"{ROUND_PAIRS / median:6.1f} pairs/s {exact_s / median:5.2f}x exact, paired {paired:5.3f}x"
            )
        print(f"{name:16s} {speed:44s} {'   '.join(fidelity)}")


if __name__ == "__main__":
    main()
