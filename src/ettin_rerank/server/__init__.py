"""The HTTP rerank service: `create_app(scorer, settings)` over one `TokenizedPairScorer` (a `Reranker`).

Importing this package needs the `server` extra (fastapi, uvicorn, prometheus-client).
"""

from __future__ import annotations

from .app import create_app
from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
