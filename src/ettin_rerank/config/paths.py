"""Where ettin-rerank keeps files between runs: one cache directory, one override."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """`$ETTIN_RERANK_CACHE_DIR` when set (tests point it at a temporary folder), else the user's
    cache directory for ettin-rerank (platformdirs)."""
    override = os.environ.get("ETTIN_RERANK_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("ettin-rerank"))
