"""Metrics, retrieve-then-rerank evaluation and reports."""

from .evaluator import (
    EvaluationReport,
    EvaluationSettings,
    evaluate,
    first_stage_run,
    rerank_run,
)
from .metrics import DEFAULT_METRICS, evaluate_per_query, evaluate_run, ranked_ids
from .reports import plot_chart, render_markdown, write_report

__all__ = [
    "DEFAULT_METRICS",
    "EvaluationReport",
    "EvaluationSettings",
    "evaluate",
    "evaluate_per_query",
    "evaluate_run",
    "first_stage_run",
    "plot_chart",
    "ranked_ids",
    "render_markdown",
    "rerank_run",
    "write_report",
]
