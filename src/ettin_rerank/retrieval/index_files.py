"""The metadata file every saved index keeps: JSON with a format version, written and checked here.

A BM25 index (`bm25.py`), a dense index (`dense.py`) and a search index (`index.py`) each save one
such file beside their data; reading it back is the one place an index is refused.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FORMAT_VERSION_KEY = "format_version"


class IndexFormatError(FileNotFoundError, ValueError):
    """A directory holds no index of the kind asked for that this version can read: its metadata file
    is missing, not valid JSON, foreign (no format version, required fields absent), or of another
    format version. A `FileNotFoundError` (no readable index is there) and a `ValueError` (what is
    there is the wrong format), so callers that catch either keep working."""


def write_index_metadata(
    directory: Path, meta_file: str, format_version: int, fields: Mapping[str, Any], indent: int | None = None
) -> Path:
    """Write `fields` plus the format version as `directory/meta_file`; the path written. Written
    whole or not at all (a temporary file `os.replace`d into place), so a reader never sees half."""
    path = directory / meta_file
    text = json.dumps({FORMAT_VERSION_KEY: format_version, **fields}, indent=indent)
    temporary = path.with_name(f".{meta_file}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(text + ("\n" if indent is not None else ""), encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_index_metadata(
    directory: Path,
    meta_file: str,
    kind: str,
    format_version: int,
    required: Iterable[str] = (),
    remedy: str = "rebuild the index",
) -> dict[str, Any]:
    """The metadata `write_index_metadata` wrote, or `IndexFormatError` saying what is wrong and `remedy`.

    `kind` names the index in messages ("BM25 index"); `required`: the fields the caller reads.
    """
    path = directory / meta_file
    if not path.is_file():
        raise IndexFormatError(f"{directory} is not a {kind} ({meta_file} is missing); {remedy}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexFormatError(
            f"{path} is corrupt, not the JSON a {kind} saves ({error}); {remedy}"
        ) from error
    version = meta.get(FORMAT_VERSION_KEY) if isinstance(meta, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise IndexFormatError(
            f"{path} has no {FORMAT_VERSION_KEY}: a foreign file, or a {kind} saved before indexes "
            f"carried a format version; {remedy}"
        )
    if version > format_version:
        raise IndexFormatError(
            f"{directory}: {kind} format {version} is newer than this ettin-rerank reads "
            f"({format_version}); upgrade ettin-rerank, or {remedy}"
        )
    if version != format_version:
        raise IndexFormatError(
            f"{directory}: {kind} format {version} is not supported (this version reads "
            f"{format_version}); {remedy}"
        )
    missing = [field for field in required if field not in meta]
    if missing:
        raise IndexFormatError(f"{path} is corrupt: it lacks {', '.join(missing)}; {remedy}")
    return meta
