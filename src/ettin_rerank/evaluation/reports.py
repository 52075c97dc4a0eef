"""Evaluation outputs: JSON, a Markdown table and a PNG chart side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .evaluator import EvaluationReport


def _as_dict(report: EvaluationReport | dict[str, Any]) -> dict[str, Any]:
    return report.to_dict() if isinstance(report, EvaluationReport) else report


def render_markdown(report: EvaluationReport | dict[str, Any]) -> str:
    """A table: metric | first stage | reranked | change."""
    data = _as_dict(report)
    settings = data.get("settings", {})
    dataset = data.get("dataset", {})
    reranked = data.get("reranked")
    lines = [
        f"# Evaluation: {dataset.get('name', '?')} ({dataset.get('split', '?')})",
        "",
        f"First stage: {settings.get('first_stage')}; reranker: {settings.get('reranker') or 'none'}; "
        f"top-k reranked: {settings.get('top_k')}; queries evaluated: {data.get('counts', {}).get('queries_evaluated', '?')}",
        "",
    ]
    notes: list[str] = []
    if settings.get("qrels"):
        notes.append(f"Qrels: {settings['qrels']}")
    compute = settings.get("reranker_compute")
    if compute:
        mode = compute["dtype"] + (f", {compute['quantize']} linears" if compute.get("quantize") else "")
        notes.append(
            f"Reranker computed in {mode} on {compute['device']}, {compute['max_length']} tokens per pair"
        )
    dropped = data.get("counts", {}).get("identical_ids_dropped")
    if dropped:
        notes.append(f"Results dropped for sharing their query's id (BEIR's rule): {dropped}")
    if notes:
        lines.insert(-1, "; ".join(notes))  # under the settings line

    if reranked:
        lines += ["| metric | first stage | reranked | change |", "|---|---:|---:|---:|"]
        for metric, value in data["first_stage"].items():
            after = reranked.get(metric, math.nan)
            lines.append(f"| {metric} | {value:.4f} | {after:.4f} | {after - value:+.4f} |")
    else:
        lines += ["| metric | first stage |", "|---|---:|"]
        for metric, value in data["first_stage"].items():
            lines.append(f"| {metric} | {value:.4f} |")
    timings = data.get("timings") or {}
    if timings:
        lines += ["", "Timings: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    return "\n".join(lines) + "\n"


def plot_chart(report: EvaluationReport | dict[str, Any], path: str | Path) -> Path:
    """Grouped bars per metric: first stage vs reranked (first stage only when not reranked)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    data = _as_dict(report)
    metrics = list(data["first_stage"])
    series = [("first stage", [data["first_stage"][m] for m in metrics])]
    if data.get("reranked"):
        series.append(("reranked", [data["reranked"][m] for m in metrics]))
    figure = Figure(figsize=(1.4 * len(metrics) + 2, 4))
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(metrics))]
        bars = axes.bar(positions, values, width, label=label)
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(range(len(metrics)), metrics)
    axes.set_ylim(0, 1.15)  # headroom for the legend above the bars
    axes.set_ylabel("score")
    dataset = data.get("dataset", {})
    settings = data.get("settings", {})
    axes.set_title(
        f"{dataset.get('name', '')} {dataset.get('split', '')}: {settings.get('first_stage')} -> {settings.get('reranker') or 'no rerank'}"
    )
    axes.legend(loc="upper left", ncols=2, frameon=False)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def write_report(report: EvaluationReport | dict[str, Any], json_path: str | Path) -> dict[str, Path]:
    """Write `<name>.json`, `<name>.md` and `<name>.png` side by side; returns their paths."""
    data = _as_dict(report)
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(render_markdown(data), encoding="utf-8")
    png_path = plot_chart(data, json_path.with_suffix(".png"))
    return {"json": json_path, "markdown": markdown_path, "png": png_path}
