"""What the trainer measures at each evaluation: NanoBEIR-style NDCG@10 and held-out agreement.

- `NanoEvaluator`: a NanoBEIR-style subset of the eval dataset (sampled queries, their
  judged documents plus BM25 distractors), BM25 top-100 computed once, reranked by the
  student at each evaluation; positives the first stage missed are not injected.
- `heldout_metrics`: the student against the teacher on held-out pairs: MSE of the raw
  logits and the per-query Spearman / Kendall rank correlations (mean over queries).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy import stats

from ..scoring import PairScorer

logger = logging.getLogger(__name__)


class NanoEvaluator:
    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "test",
        n_queries: int = 50,
        max_corpus: int = 5000,
        top_k: int = 100,
        seed: int = 0,
    ):
        from ..evaluation.evaluator import first_stage_run
        from ..evaluation.metrics import evaluate_run
        from ..retrieval.beir import load_beir
        from ..retrieval.nano import build_nano_subset

        full = load_beir(dataset_dir, split)
        self.dataset = build_nano_subset(
            full, n_queries=n_queries, max_corpus=max_corpus, seed=seed, show_progress=False
        )
        self.top_k = top_k
        self.run, _ = first_stage_run(self.dataset, "bm25", k=max(top_k, 100), show_progress=False)
        self.first_stage_ndcg = evaluate_run(self.dataset.qrels, self.run, ["ndcg@10"])["ndcg@10"]
        logger.info(
            "eval subset: %d queries, %d documents; BM25 NDCG@10 %.4f",
            len(self.dataset.queries),
            len(self.dataset.corpus),
            self.first_stage_ndcg,
        )

    def __call__(self, scorer: PairScorer) -> float:
        """NDCG@10 of the BM25 run reranked by `scorer` (the student, lent as a `Reranker`)."""
        from ..evaluation.metrics import evaluate_run
        from ..retrieval.rerank import rerank_run

        reranked = rerank_run(
            scorer,
            self.dataset.queries,
            self.dataset.corpus,
            self.run,
            top_k=self.top_k,
            show_progress=False,
        )
        return float(evaluate_run(self.dataset.qrels, reranked, ["ndcg@10"])["ndcg@10"])


def rank_correlations(student: np.ndarray, teacher: np.ndarray, query_ids: np.ndarray) -> tuple[float, float]:
    """Mean per-query Spearman and Kendall (tau-b) correlation; queries with < 2 pairs or constant scores skipped."""
    spearman, kendall = [], []
    for q in np.unique(query_ids):
        mask = query_ids == q
        s, t = student[mask], teacher[mask]
        if mask.sum() < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
            continue
        spearman.append(stats.spearmanr(s, t).statistic)
        kendall.append(stats.kendalltau(s, t).statistic)
    if not spearman:
        return float("nan"), float("nan")
    return float(np.mean(spearman)), float(np.mean(kendall))


def heldout_metrics(student: np.ndarray, teacher: np.ndarray, query_ids: np.ndarray) -> dict[str, float]:
    student = np.asarray(student, dtype=np.float64)
    teacher = np.asarray(teacher, dtype=np.float64)
    spearman, kendall = rank_correlations(student, teacher, np.asarray(query_ids))
    return {
        "heldout_mse": float(np.mean((student - teacher) ** 2)),
        "heldout_spearman": spearman,
        "heldout_kendall": kendall,
    }
