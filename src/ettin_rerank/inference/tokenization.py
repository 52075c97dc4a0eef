"""Pair tokenization with the checkpoint's own `tokenizer.json`.

Produces exactly what transformers' fast tokenizer produces for `tokenizer(query, document,
truncation=True, max_length=M)`, which is what Sentence Transformers' CrossEncoder does:
the pair template from `tokenizer.json` and `longest_first` truncation, which cuts the
longer text (the document, in reranking) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


@dataclass
class EncodedPairs:
    """Token ids of (query, document) pairs, one array per pair (no padding anywhere)."""

    input_ids: list[np.ndarray]  # each (length,) int64
    token_type_ids: list[np.ndarray] | None  # each (length,) int64, for models with segment embeddings
    truncated: np.ndarray  # (pairs,) bool: the pair was cut to fit max_length

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def select(self, indices: Sequence[int] | np.ndarray) -> EncodedPairs:
        return EncodedPairs(
            input_ids=[self.input_ids[i] for i in indices],
            token_type_ids=None if self.token_type_ids is None else [self.token_type_ids[i] for i in indices],
            truncated=self.truncated[np.asarray(indices, dtype=np.int64)],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[EncodedPairs]) -> EncodedPairs:
        with_types = all(p.token_type_ids is not None for p in parts) and bool(parts)
        return cls(
            input_ids=[ids for p in parts for ids in p.input_ids],
            token_type_ids=[t for p in parts for t in p.token_type_ids] if with_types else None,
            truncated=np.concatenate([p.truncated for p in parts]) if parts else np.zeros(0, dtype=bool),
        )


class PairTokenizer:
    """Wraps a `tokenizers.Tokenizer`; truncation is configured per call, padding never."""

    def __init__(self, backend: Tokenizer, max_length: int, with_token_type_ids: bool):
        self.backend = backend
        self.max_length = max_length
        self.with_token_type_ids = with_token_type_ids
        self.backend.no_padding()
        self.num_special_tokens = (
            backend.post_processor.num_special_tokens_to_add(True) if backend.post_processor else 0
        )

    @classmethod
    def from_dir(cls, directory: str | Path, max_length: int, with_token_type_ids: bool) -> PairTokenizer:
        path = Path(directory) / "tokenizer.json"
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as error:  # the Rust side raises plain Exceptions for corrupt files
            raise ValueError(f"cannot read tokenizer {path}: {error}") from error
        return cls(backend, max_length, with_token_type_ids)

    def encode_pairs(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        max_length = max_length or self.max_length
        if max_length <= self.num_special_tokens:
            raise ValueError(
                f"max_length {max_length} leaves no room for text after {self.num_special_tokens} special tokens"
            )
        self.backend.enable_truncation(max_length, strategy="longest_first", direction="right")
        encodings = self.backend.encode_batch(list(pairs), add_special_tokens=True) if pairs else []
        return EncodedPairs(
            input_ids=[np.asarray(e.ids, dtype=np.int64) for e in encodings],
            token_type_ids=[np.asarray(e.type_ids, dtype=np.int64) for e in encodings]
            if self.with_token_type_ids
            else None,
            truncated=np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(encodings)),
        )

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of each text alone, without special tokens or truncation."""
        self.backend.no_truncation()
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False) if texts else []
        return np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
