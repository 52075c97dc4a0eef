"""What an index's `search` takes: queries as {query_id: text} or a list, and a depth `k`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Queries = Mapping[str, str] | Sequence[str]


def keyed_queries(queries: Queries, k: int) -> dict[str, str]:
    """`queries` as {query_id: text}, a list's ids being "0", "1", ...; a `k` below 1 is refused."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(queries, Mapping):
        return dict(queries)
    return {str(i): query for i, query in enumerate(queries)}
