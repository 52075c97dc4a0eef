"""The HTTP rerank service: `create_app(scorer, settings)` over one scorer (a `Reranker` or `FakeScorer`).

Importing this package needs the `server` extra (fastapi, uvicorn, prometheus-client).
"""

from __future__ import annotations

from .app import create_app
from .fake import FakeScorer
from .scorer import Scorer
from .settings import ServerSettings

__all__ = ["FakeScorer", "Scorer", "ServerSettings", "create_app"]
