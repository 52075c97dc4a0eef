"""The loss-curve PNG of a distillation run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_loss_curve(log: dict[str, Any], path: str | Path) -> Path:
    """Training loss (raw and smoothed), held-out MSE and NDCG@10 against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    history = log.get("history", [])
    evals = log.get("evals", [])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if history:
        steps = np.array([h["step"] for h in history])
        losses = np.array([h["loss"] for h in history])
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="train loss")
        window = max(1, len(losses) // 20)
        if window > 1:
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"train loss ({window}-step mean)")
    held = [(e["step"], e["heldout_mse"]) for e in evals if "heldout_mse" in e]
    if held:
        ax.plot(*zip(*held, strict=True), "o-", color="tab:orange", label="held-out MSE")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE vs teacher logits")
    ax.set_yscale("log")
    ndcg = [(e["step"], e["ndcg@10"]) for e in evals if "ndcg@10" in e]
    if ndcg:
        right = ax.twinx()
        right.plot(*zip(*ndcg, strict=True), "s--", color="tab:green", label="NDCG@10 (eval subset)")
        baseline = log.get("first_stage_ndcg@10")
        if baseline is not None:
            right.axhline(baseline, color="tab:gray", linestyle=":", label="BM25 NDCG@10")
        right.set_ylabel("NDCG@10")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)
    else:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"distillation: {log.get('student', '')}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
