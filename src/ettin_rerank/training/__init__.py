"""Distillation: mine candidates, score them with a teacher, subsample, train a student.

Four resumable steps, each writing Parquet shards with provenance columns:
`mine_candidates` -> `score_teacher` -> `select_training_pairs` -> `distill`.
Heavy dependencies (ray, matplotlib, bm25s) load only when a step needs them.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "mine_candidates": ".mining",
    "score_teacher": ".scoring",
    "load_teacher": ".teacher",
    "select_training_pairs": ".selection",
    "select_for_query": ".selection",
    "DistillConfig": ".distill",
    "distill": ".distill",
    "build_student": ".student",
    "pointwise_mse": ".losses",
    "margin_mse": ".losses",
    "PROVENANCE_COLUMNS": ".io",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
