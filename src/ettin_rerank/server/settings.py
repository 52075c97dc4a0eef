"""Server settings: `ServerSettings` (every limit and default of the service, kept in
`config/server.py` so that `serve --help` reads it without fastapi) and the served model's name."""

from __future__ import annotations

from pathlib import Path

from ..config.server import ServerSettings
from ..models import BUNDLED_MODEL_DIR

__all__ = ["BUNDLED_MODEL_ID", "ServerSettings", "default_served_name"]

BUNDLED_MODEL_ID = "ettin-rerank-default"  # the bundled model's id: its directory name says nothing


def default_served_name(name_or_path: str) -> str:
    """The model id clients see when no --served-model-name is given: a Hub id as it is, a local
    model by its directory's name. Never a filesystem path: it would tell every client how the
    server's disk is laid out, and change with it."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.resolve() == BUNDLED_MODEL_DIR.resolve():
        return BUNDLED_MODEL_ID
    # the Hub-id rule of `Reranker.from_pretrained`: exactly one "/" and no path prefix
    hub_id = not name.startswith((".", "/", "~")) and name.count("/") == 1 and "\\" not in name
    if hub_id and not path.exists():
        return name
    return path.resolve().name or name
