"""ettin-rerank: fast, exact cross-encoder reranking for the Ettin family.

Nothing heavy runs at import: `Reranker` is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Reranker", "__version__"]

if TYPE_CHECKING:
    from .inference.reranker import Reranker


def __getattr__(name: str) -> Any:
    if name == "Reranker":
        from .inference.reranker import Reranker

        return Reranker
    raise AttributeError(f"module 'ettin_rerank' has no attribute {name!r}")
