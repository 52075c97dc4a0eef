"""The one contract for anything that scores (query, document) pairs.

`PairScorer`: pairs in, one float32 score per pair out, in input order, raw (no activation).
`ettin_rerank.Reranker` implements it, and so do the distillation teachers and the benchmark
engines; evaluation, teacher scoring and benchmarks consume it and nothing wider.

`TokenizedPairScorer` is the same contract plus the scorer's tokenization, for the one caller
that forms its own batches by tokens (the HTTP server's batcher): it tokenizes with the
scorer's own `PairTokenizer` and hands it exactly one batch at a time.

`LongDocumentScorer` is a `PairScorer` that also reads documents longer than its window by a
long-document mode (truncate or chunk) and reports what it cut or windowed (`score_report`):
search scores through it when the scorer is one, else through `score_pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .inference.calibration import Calibration
    from .inference.long_documents import PairScores
    from .inference.tokenization import EncodedPairs, PairTokenizer


@runtime_checkable
class PairScorer(Protocol):
    """Pairs in, one float32 score per pair out, in input order (raw, no activation)."""

    @property
    def name(self) -> str:
        """What scores (a model path or id, a teacher spec), for provenance and logs."""
        ...

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


@runtime_checkable
class TokenizedPairScorer(PairScorer, Protocol):
    """A `PairScorer` that exposes its tokenizer and scores one caller-formed batch at a time."""

    tokenizer: PairTokenizer
    calibration: Calibration | None  # raw score -> P(relevant), when the model carries one
    license: str | None  # the licence the model card declares, reported by /v1/models

    @property
    def max_length(self) -> int: ...

    def default_batch_tokens(self) -> int: ...

    def score_encoded(self, encoded: EncodedPairs) -> np.ndarray:
        """These rows as one batch, in the calling thread, without re-planning: (rows,) float32."""
        ...


@runtime_checkable
class LongDocumentScorer(PairScorer, Protocol):
    """A `PairScorer` that scores pairs by a long-document mode and reports windows."""

    def score_report(
        self,
        pairs: Sequence[tuple[str, str]],
        long_documents: str = "truncate",
        batch_tokens: int | None = None,
        show_progress_bar: bool | None = None,
        batch_size: int | None = None,
    ) -> PairScores:
        """Raw fp32 scores in input order, with each pair's truncation, window count and best window."""
        ...


def checked_scores(scores: object, expected: int, scorer_name: str) -> np.ndarray:
    """`scores` as a 1-D float32 array of `expected` finite values, or a RuntimeError naming the scorer."""
    array = np.asarray(scores, dtype=np.float32).reshape(-1)
    if array.shape[0] != expected:
        raise RuntimeError(f"{scorer_name} returned {array.shape[0]} scores for {expected} pairs")
    if not np.all(np.isfinite(array)):
        raise RuntimeError(
            f"{scorer_name} returned non-finite scores (NaN or inf); check the model and its dtype"
        )
    return array
