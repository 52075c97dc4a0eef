"""Raw scores -> what a caller reads: activations and rankings. numpy only, so the HTTP protocol
layer and the integrations apply them without torch.

Rankings always sort by the raw score: an activation that saturates would tie what the model told
apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config.loading import ACTIVATIONS
from .calibration import Calibration


def sigmoid_fp32(scores: np.ndarray) -> np.ndarray:
    """The logistic of fp32 scores, computed in fp32 without overflow (exp of -|x| only)."""
    x = np.asarray(scores, dtype=np.float32)
    e = np.exp(-np.abs(x))  # in (0, 1]
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def check_activation(activation: str | None, calibration: Calibration | None) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation == "calibrated" and calibration is None:
        raise ValueError(
            "activation='calibrated' needs a calibrated model: this one has no calibration.json; "
            "fit one with `ettin-rerank calibrate MODEL DATASET`, or use activation='sigmoid'"
        )


def probability_activation(calibration: Calibration | None) -> str:
    """The activation to use where callers read a score as a probability (API relevance scores,
    framework thresholds like `relevance_score > 0.5`): "calibrated" when the model carries a
    calibration (`ettin-rerank calibrate`), else "sigmoid", the Cohere-style convention."""
    return "calibrated" if calibration is not None else "sigmoid"


def apply_activation(
    scores: np.ndarray, activation: str | None, calibration: Calibration | None = None
) -> np.ndarray:
    """Raw fp32 scores through the named activation, computed in fp32 (sigmoid) or fp64 (calibrated)."""
    if activation == "sigmoid":
        return sigmoid_fp32(scores)
    if activation == "calibrated":
        check_activation(activation, calibration)
        assert calibration is not None
        return calibration.probabilities(scores)
    return scores


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score; ties keep ascending index (a stable sort of the negated scores)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def ranked_results(
    scores: np.ndarray,
    documents: Sequence[str] | None = None,
    top_k: int | None = None,
    raw_scores: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Results by descending score. With `raw_scores`, the order comes from them."""
    order = rank_order(scores if raw_scores is None else raw_scores)
    if top_k is not None:
        order = order[:top_k]
    results = []
    for index in order:
        item: dict[str, Any] = {"index": int(index), "score": float(scores[index])}
        if documents is not None:
            item["document"] = documents[index]
        results.append(item)
    return results
