"""What a caller hands the scorers, checked once: pairs and document lists. A wrong type is a
`TypeError` naming the first bad item, for every scorer (the engine, the ONNX runtime)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def validate_pairs(pairs: Any) -> list[tuple[str, str]]:
    """Any iterable of (query, document) string pairs (lists, tuples, generators, numpy arrays) as a list."""
    if isinstance(pairs, str | bytes | dict) or not isinstance(pairs, Iterable):
        raise TypeError(f"pairs must be a list of (query, document) tuples, got {type(pairs).__name__}")
    out = []
    for position, pair in enumerate(pairs):
        if isinstance(pair, np.ndarray):
            pair = pair.tolist()
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(
                f"pairs[{position}] must be a (query, document) pair of strings, got {pair!r:.80}"
            )
        query, document = pair
        if not isinstance(query, str):
            raise TypeError(f"pairs[{position}][0] (the query) must be a string, got {type(query).__name__}")
        if not isinstance(document, str):
            raise TypeError(
                f"pairs[{position}][1] (the document) must be a string, got {type(document).__name__}"
            )
        out.append((str(query), str(document)))  # numpy.str_ -> str
    return out


def validate_documents(documents: Any) -> list[str]:
    """Any iterable of strings (lists, tuples, generators, numpy arrays of str) as a list."""
    if isinstance(documents, str | bytes | dict) or not isinstance(documents, Iterable):
        raise TypeError(f"documents must be a list of strings, got {type(documents).__name__}")
    out = []
    for position, document in enumerate(documents):
        if not isinstance(document, str):
            raise TypeError(f"documents[{position}] must be a string, got {type(document).__name__}")
        out.append(str(document))
    return out
