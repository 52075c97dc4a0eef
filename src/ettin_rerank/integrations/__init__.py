"""In-process reranking inside LangChain and LlamaIndex (see docs/integrations.md).

- `ettin_rerank.integrations.langchain.EttinRerank`: a LangChain document compressor
  (`pip install 'ettin-rerank[langchain]'`).
- `ettin_rerank.integrations.llama_index.EttinRerank`: a LlamaIndex node postprocessor
  (`pip install 'ettin-rerank[llamaindex]'`).

Each of those modules imports its framework when it is itself imported; this one imports
neither, and holds what both share: which model to load, which activation a score goes
through, and the checks of the options, so the two integrations cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inference.reranker import Reranker

DEFAULT_TOP_N = 3  # langchain-cohere's CohereRerank keeps 3 too
DEFAULT_LONG_DOCUMENTS = "chunk"  # retrieved passages are often longer than a reranker's max length


def missing_framework(extra: str, package: str, error: ImportError) -> ImportError:
    """The ImportError an integration module raises when its framework is not installed."""
    return ImportError(
        f"this integration needs {package}, which is not installed: pip install 'ettin-rerank[{extra}]'"
        f" ({error})"
    )


def load_reranker(model: str | os.PathLike | None = None, reranker: Any = None) -> Reranker:
    """The reranker an integration scores with: the one lent (`reranker=`), the one named
    (`model=`, a local directory or a Hub id), or, with neither, the model the CLI uses
    ($ETTIN_RERANK_MODEL, then the reranker bundled with the package)."""
    from ..inference.reranker import Reranker

    if model is not None and reranker is not None:
        raise ValueError(
            "give either model= (a name or path to load) or reranker= (a loaded Reranker), not both"
        )
    if reranker is not None:
        if not isinstance(reranker, Reranker):
            raise TypeError(
                f"reranker must be an ettin_rerank.Reranker (e.g. Reranker.from_pretrained(...)), "
                f"got {type(reranker).__name__}"
            )
        return reranker
    if model is not None and not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"model must be a model directory or Hub id (a string or path), got {type(model).__name__}"
        )
    return Reranker.from_pretrained(model)


@dataclass(frozen=True)
class InProcessReranker:
    """What an integration scores with: the reranker and its options, checked once, at construction."""

    reranker: Reranker
    top_n: int | None  # documents kept, best first; None keeps them all
    activation: str  # "calibrated", "sigmoid" or "identity" (raw logits)
    long_documents: str  # "chunk" (max over windows) or "truncate" (the first max_length tokens)

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        reranker: Any = None,
        top_n: Any = DEFAULT_TOP_N,
        activation: str | None = None,
        long_documents: str = DEFAULT_LONG_DOCUMENTS,
    ) -> InProcessReranker:
        """`load_reranker(model, reranker)` with its options checked against it; `activation=None`
        means the engine's `Reranker.probability_activation` (calibrated when the model has a
        calibration, else sigmoid)."""
        from ..inference.long_documents import check_long_documents
        from ..inference.scores import check_activation

        loaded = load_reranker(model, reranker)
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise ValueError(
                f"top_n must be a positive integer, or None to keep every document; got {top_n!r}"
            )
        if activation is None:
            activation = loaded.probability_activation
        elif activation not in ("calibrated", "sigmoid", "identity"):
            # None is the reranker's own name for raw logits; here it means "choose for me"
            raise ValueError(
                f"activation must be 'calibrated', 'sigmoid', 'identity' (raw logits) or None "
                f"(calibrated when the model has a calibration, else sigmoid); got {activation!r}"
            )
        check_activation(activation, loaded.calibration)
        return cls(loaded, top_n, activation, check_long_documents(long_documents))

    @property
    def name(self) -> str:
        return self.reranker.name

    def rerank(self, query: Any, texts: list[str]) -> list[dict[str, Any]]:
        """`Reranker.rank` results for the texts (best first, at most `top_n`), each with `index`,
        `score` and, when chunking, `n_chunks` and `best_chunk`."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not texts:
            return []
        return self.reranker.rank(
            query,
            texts,
            top_k=self.top_n,
            activation=self.activation,
            long_documents=self.long_documents,
            show_progress_bar=False,
        )
