"""Run a benchmark: same model directory, same pairs, same machine, alternating repeats."""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config.bench import SHORT_MAX_LENGTH, WARMUP_PAIRS, WORKLOADS, BenchConfig
from ..inference.allocator import malloc_tuned
from ..inference.cpu import cpu_kernels
from ..inference.modes import cpu_auto_probe
from ..inference.tokenization import PairTokenizer
from ..modeling.loading import load_checkpoint
from .engines import (
    OPENVINO_CALIBRATION_PAIRS,
    OUR_MODES,
    BenchEngine,
    EngineUnavailable,
    load_engine,
)
from .measure import EncoderShape, PeakMemory, matmul_peak_gflops, timed, useful_flops
from .workloads import beir_short_pairs, long_pairs

logger = logging.getLogger(__name__)


def _machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    kernels = cpu_kernels()
    if kernels.model_name:
        info["cpu"] = kernels.model_name
    info["cpu_kernels"] = kernels.describe()  # the flags that decide which kernels run
    # every engine of the run shares the process, so each ran with or without it (inference/allocator.py)
    info["malloc_tuned"] = malloc_tuned()
    if device == "cpu":  # what dtype="auto" picks here, at the benchmark's thread count (cached probe)
        info["dtype_auto"] = cpu_auto_probe().describe()
    for package in ("sentence_transformers", "onnxruntime", "openvino"):
        try:
            info[package] = importlib.import_module(package).__version__
        except ImportError:
            info[package] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _deviation(scores: np.ndarray, reference: np.ndarray, groups: list[np.ndarray]) -> dict[str, float]:
    """max |difference|, Spearman correlation, and mean top-10 agreement per query group."""
    from scipy.stats import spearmanr

    diff = float(np.abs(scores.astype(np.float64) - reference).max())
    rho = float(spearmanr(scores, reference).statistic) if len(scores) > 2 else 1.0
    overlaps = []
    for group in groups:
        k = min(10, len(group))
        top = set(group[np.argsort(-scores[group], kind="stable")[:k]].tolist())
        top_ref = set(group[np.argsort(-reference[group], kind="stable")[:k]].tolist())
        overlaps.append(len(top & top_ref) / k)
    return {
        "max_abs_diff": diff,
        "reference_score_std": float(np.std(reference)),  # random-weight models have a tiny spread
        "spearman": rho,
        "top10_agreement": float(np.mean(overlaps)) if overlaps else 1.0,
    }


@dataclass
class _Workload:
    """The pairs every engine scores, and what the report says about them."""

    pairs: list[tuple[str, str]]
    groups: list[np.ndarray]  # row indices of each query's pairs (top-10 agreement is per group)
    lengths: np.ndarray  # tokens per pair
    useful_flops: float
    max_length: int


@dataclass
class _Measurements:
    """What the timed repeats measured, per engine."""

    seconds: dict[str, list[float]]  # one per repeat
    peak_bytes: dict[str, int]  # the largest of the repeats
    scores: dict[str, np.ndarray]  # the last repeat's


def run_bench(config: BenchConfig, show_progress: bool = False) -> dict[str, Any]:
    """Every engine of `config` on the same pairs; `show_progress`: a bar over the timed passes
    (each pass scores every pair once, so a 1,000-pair run passes minutes without it)."""
    if config.workload not in WORKLOADS:
        raise ValueError(f"unknown workload {config.workload!r}; choose from {list(WORKLOADS)}")
    if config.repeats < 1:
        raise ValueError("repeats must be >= 1")
    if config.threads:
        torch.set_num_threads(config.threads)
    workload = _build_workload(config)
    engines, unavailable = _load_engines(config, workload)
    measured = _time_engines(engines, workload.pairs, config.repeats, show_progress)
    results = _engine_results(config, workload, engines, measured)
    cpu_peak = matmul_peak_gflops(torch.float32) if config.device == "cpu" else None
    return {
        "config": asdict(config),
        "machine": _machine(config.device),
        "workload": {
            "name": config.workload,
            "pairs": len(workload.pairs),
            "max_length": workload.max_length,
            "mean_tokens": float(workload.lengths.mean()),
            "max_tokens": int(workload.lengths.max()),
            "useful_gflop": workload.useful_flops / 1e9,
        },
        "matmul_peak_gflops_fp32": cpu_peak,
        "engines": results,
        "unavailable": unavailable,  # engine -> why it could not run here
        "our_modes": {name: OUR_MODES[name] for name in results if name in OUR_MODES},
    }


def _build_workload(config: BenchConfig) -> _Workload:
    """The workload's pairs, tokenized once with the model's tokenizer to count tokens and FLOPs."""
    checkpoint = load_checkpoint(Path(config.model_dir))  # freed on return, before the engines load
    limit = min(
        checkpoint.max_length or checkpoint.max_position_embeddings, checkpoint.max_position_embeddings
    )
    max_length = config.max_length or (SHORT_MAX_LENGTH if config.workload == "beir-short" else limit)
    tokenizer = PairTokenizer.from_dir(checkpoint.tokenizer_dir, max_length, with_token_type_ids=False)
    if config.workload == "beir-short":
        pairs = beir_short_pairs(config.data_dir, config.num_queries, config.docs_per_query, config.seed)
        groups = [
            np.arange(i, min(i + config.docs_per_query, len(pairs)))
            for i in range(0, len(pairs), config.docs_per_query)
        ]
    else:
        pairs = long_pairs(
            config.data_dir, tokenizer, config.num_docs, config.min_tokens, config.max_tokens, config.seed
        )
        groups = [np.arange(len(pairs))]
    lengths = tokenizer.encode_pairs(pairs).lengths
    flops = useful_flops(EncoderShape.from_config(checkpoint.model.config), lengths)
    return _Workload(pairs=pairs, groups=groups, lengths=lengths, useful_flops=flops, max_length=max_length)


def _load_engines(config: BenchConfig, workload: _Workload) -> tuple[dict[str, BenchEngine], dict[str, str]]:
    """Each engine of `config.engines` loaded and warmed up, and why each of the others could not load."""
    calibration_pairs = None
    if "openvino-int8" in config.engines:  # NNCF's calibration: other queries than the timed ones
        per_query = 32
        calibration_pairs = beir_short_pairs(
            config.data_dir, OPENVINO_CALIBRATION_PAIRS // per_query, per_query, config.seed + 1
        )
    engines: dict[str, BenchEngine] = {}
    unavailable: dict[str, str] = {}
    pairs = workload.pairs
    warmup = pairs[: WARMUP_PAIRS.get(torch.device(config.device).type, WARMUP_PAIRS["cpu"])]
    with tempfile.TemporaryDirectory(prefix="ettin-bench-") as scratch:
        workdir = Path(config.workdir or scratch)
        for name in config.engines:
            try:
                engines[name] = load_engine(
                    name,
                    config.model_dir,
                    config.device,
                    workload.max_length,
                    config.batch_tokens,
                    config.st_batch_size,
                    threads=config.threads,
                    workdir=workdir,
                    calibration_pairs=calibration_pairs,
                )
            except EngineUnavailable as error:
                logger.warning("%s not measured: %s", name, error)
                unavailable[name] = str(error)
                continue
            engines[name].score_pairs(warmup)  # lazy init, allocator, kernels
    return engines, unavailable


def _time_engines(
    engines: dict[str, BenchEngine], pairs: list[tuple[str, str]], repeats: int, show_progress: bool = False
) -> _Measurements:
    """Every engine scores `pairs` `repeats` times, in alternating order."""
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    peaks: dict[str, int] = dict.fromkeys(engines, 0)
    scores: dict[str, np.ndarray] = {}
    with tqdm(total=repeats * len(engines), desc="timing", unit="pass", disable=not show_progress) as bar:
        for repeat in range(repeats):
            order = list(engines) if repeat % 2 == 0 else list(reversed(engines))  # alternate, no order bias
            for name in order:
                bar.set_postfix_str(f"{name}, repeat {repeat + 1} of {repeats}")
                with PeakMemory() as memory, timed() as clock:
                    scores[name] = engines[name].score_pairs(pairs)
                seconds[name].append(clock["seconds"])
                peaks[name] = max(peaks[name], memory.cuda_peak or memory.peak_rss)
                logger.info("%s repeat %d: %.1f pairs/s", name, repeat, len(pairs) / clock["seconds"])
                bar.update()
    return _Measurements(seconds=seconds, peak_bytes=peaks, scores=scores)


def _engine_results(
    config: BenchConfig,
    workload: _Workload,
    engines: dict[str, BenchEngine],
    measured: _Measurements,
) -> dict[str, dict[str, Any]]:
    """Per engine: speed, memory, deviation from the reference engine's scores, ratios to the baselines."""
    scores = measured.scores
    reference_name = next((n for n in ("st-default", "ours-exact") if n in scores), None)
    reference = scores[reference_name].astype(np.float64) if reference_name else None
    results: dict[str, dict[str, Any]] = {}
    for name, times in measured.seconds.items():
        median = statistics.median(times)
        entry: dict[str, Any] = {
            "description": engines[name].description,
            "pairs_per_s": len(workload.pairs) / median,
            "seconds": times,
            "median_seconds": median,
            "gflops_per_s": workload.useful_flops / median / 1e9,
            "peak_memory_mb": measured.peak_bytes[name] / 2**20,
            "memory_kind": "cuda max allocated" if config.device.startswith("cuda") else "process peak RSS",
        }
        if reference is not None:
            entry["deviation_vs"] = reference_name
            entry["deviation"] = _deviation(scores[name], reference, workload.groups)
        results[name] = entry
    for baseline in ("st-default", "st-bf16"):
        if baseline in results:
            for entry in results.values():
                entry[f"ratio_vs_{baseline}"] = entry["pairs_per_s"] / results[baseline]["pairs_per_s"]
    if "ours-exact" in results:
        exact_times = measured.seconds["ours-exact"]
        for name, entry in results.items():
            entry["paired_ratio_vs_ours-exact"] = paired_ratio(exact_times, measured.seconds[name])
    return results


def paired_ratio(baseline_seconds: list[float], seconds: list[float]) -> float:
    """How many times faster than the baseline an engine ran: the median over repeats of the
    baseline's time over the engine's in the same repeat. Both ran back to back on the same pairs,
    so load that drifts between repeats (a shared host) moves both, where it moves a ratio of
    medians taken from different repeats."""
    return statistics.median(b / s for b, s in zip(baseline_seconds, seconds, strict=True))


def format_table(report: dict[str, Any]) -> str:
    peak = report.get("matmul_peak_gflops_fp32")
    lines = [
        f"workload {report['workload']['name']}: {report['workload']['pairs']} pairs, "
        f"mean {report['workload']['mean_tokens']:.0f} tokens; fp32 matmul peak "
        + (f"{peak:.1f} GFLOP/s" if peak else "n/a"),
        f"cpu: {report['machine'].get('cpu', '?')}; kernels: {cpu_summary(report['machine'])}"
        + ("; malloc: freed memory kept (every engine)" if report["machine"].get("malloc_tuned") else ""),
        *(
            [f"dtype auto: {auto_summary(report['machine']['dtype_auto'])}"]
            if "dtype_auto" in report["machine"]
            else []
        ),
        f"{'engine':<14} {'pairs/s':>9} {'x st-def':>9} {'x st-bf16':>9} {'x exact':>8} {'GFLOP/s':>8} "
        f"{'peak MB':>8} {'max|diff|':>10} {'spearman':>8} {'top10':>6}",
    ]
    for name, e in report["engines"].items():
        dev = e.get("deviation", {})
        lines.append(
            f"{name:<14} {e['pairs_per_s']:>9.2f} {e.get('ratio_vs_st-default', float('nan')):>9.2f} "
            f"{e.get('ratio_vs_st-bf16', float('nan')):>9.2f} {e.get('paired_ratio_vs_ours-exact', float('nan')):>8.3f} "
            f"{e['gflops_per_s']:>8.1f} {e['peak_memory_mb']:>8.0f} "
            f"{dev.get('max_abs_diff', float('nan')):>10.2e} {dev.get('spearman', float('nan')):>8.5f} "
            f"{dev.get('top10_agreement', float('nan')):>6.3f}"
        )
    for name, reason in report.get("unavailable", {}).items():
        lines.append(f"{name:<14} not measured: {reason}")
    if any("paired_ratio_vs_ours-exact" in e for e in report["engines"].values()):
        lines.append("x exact: the median over repeats of ours-exact's time over the engine's, same repeat")
    return "\n".join(lines)


def cpu_summary(machine: dict[str, Any]) -> str:
    """The CPU's kernel flags in one phrase, e.g. "avx2 fma (no native bf16, no int8 dot product)"."""
    kernels = machine.get("cpu_kernels") or {}
    flags = " ".join(kernels.get("flags", [])) or "unknown"
    bf16 = "native bf16" if kernels.get("native_bf16") else "no native bf16"
    int8 = "int8 dot product (VNNI/AMX)" if kernels.get("native_int8") else "no int8 dot product"
    return f"{flags} ({bf16}, {int8})"


def auto_summary(auto: dict[str, Any]) -> str:
    """What dtype="auto" picks and the measured ratio, e.g. "float32 (bf16 0.66x the speed of fp32 ...)"."""
    if auto.get("bf16_speedup") is None:
        return f"{auto['dtype']} ({auto['source']})"
    return (
        f"{auto['dtype']} (bf16 {auto['bf16_speedup']:.2f}x the speed of fp32 on the probe's matmuls, "
        f"{auto['fp32_gflops']:.0f} GFLOP/s fp32, {auto['threads']} threads, {auto['source']}; "
        f"bf16 from {auto['bf16_min_speedup']:.2f}x)"
    )


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def write_chart(report: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of pairs/s per engine, ratios against st-default on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(report["engines"])
    rates = [report["engines"][n]["pairs_per_s"] for n in names]
    colors = ["tab:blue" if n.startswith("ours") else "tab:gray" for n in names]
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 4))
    bars = ax.bar(names, rates, color=colors)
    for bar, name in zip(bars, names, strict=True):
        ratio = report["engines"][name].get("ratio_vs_st-default")
        label = f"{bar.get_height():.1f}" + (f"\n{ratio:.2f}x" if ratio is not None else "")
        ax.annotate(
            label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8
        )
    workload = report["workload"]
    ax.set_ylabel("pairs / s (median)")
    ax.set_title(
        f"{Path(report['config']['model_dir']).name}: {workload['name']}, {workload['pairs']} pairs, "
        f"{report['machine'].get('torch_threads')} threads",
        fontsize=9,
    )
    ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_markdown(reports: list[dict[str, Any]]) -> str:
    """One README-style table over several reports (one row per model x workload x engine)."""
    lines = [
        "| model | workload | engine | pairs/s | x st-default | x st-bf16 | GFLOP/s (fp32 peak) | peak MB | max abs diff | Spearman |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        model = Path(report["config"]["model_dir"]).name
        workload = f"{report['workload']['name']} ({report['workload']['pairs']} pairs)"
        peak = report.get("matmul_peak_gflops_fp32")
        for name, e in report["engines"].items():
            dev = e.get("deviation", {})
            st_bf16 = e.get("ratio_vs_st-bf16")
            lines.append(
                f"| {model} | {workload} | {name} | {e['pairs_per_s']:.2f} | {e.get('ratio_vs_st-default', 1.0):.2f}x | "
                + (f"{st_bf16:.2f}x" if st_bf16 is not None else "-")
                + f" | {e['gflops_per_s']:.1f} ({peak:.0f}) | {e['peak_memory_mb']:.0f} | "
                f"{dev.get('max_abs_diff', 0.0):.1e} | {dev.get('spearman', 1.0):.4f} |"
            )
    return "\n".join(lines)
