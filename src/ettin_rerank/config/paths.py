"""Where ettin-rerank keeps files between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user's cache directory for ettin-rerank: `$ETTIN_RERANK_CACHE_DIR` when set, else the
    platform's (`~/.cache/ettin-rerank` on Linux)."""
    override = os.environ.get("ETTIN_RERANK_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("ettin-rerank"))
