"""Pair tokenization with the checkpoint's own `tokenizer.json`.

Produces exactly what transformers' fast tokenizer produces for `tokenizer(query, document,
truncation=True, max_length=M)`, which is what Sentence Transformers' CrossEncoder does:
the pair template from `tokenizer.json` and `longest_first` truncation, which cuts the
longer text (the document, in reranking) first.
"""

from __future__ import annotations

import threading
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
            token_type_ids=[t for p in parts for t in (p.token_type_ids or [])] if with_types else None,
            truncated=np.concatenate([p.truncated for p in parts]) if parts else np.zeros(0, dtype=bool),
        )


class PairTokenizer:
    """The one owner of a checkpoint's `tokenizers.Tokenizer`; padding never.

    Truncation is state inside a Rust tokenizer, so it is never toggled on a shared one:
    each setting gets its own backend, configured once when first needed (one per pair
    `max_length`, one without truncation for texts alone). Every method is then safe to
    call from any thread.
    """

    def __init__(self, backend: Tokenizer, max_length: int, with_token_type_ids: bool):
        self._template = backend.to_str()
        self.max_length = max_length
        self.with_token_type_ids = with_token_type_ids
        self.num_special_tokens = (
            backend.post_processor.num_special_tokens_to_add(True) if backend.post_processor else 0
        )
        self._pair_backends: dict[int, Tokenizer] = {}
        self._lock = threading.Lock()
        self._texts_backend = self._new_backend()  # no truncation: texts alone, offsets kept

    @classmethod
    def from_dir(cls, directory: str | Path, max_length: int, with_token_type_ids: bool) -> PairTokenizer:
        path = Path(directory) / "tokenizer.json"
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as error:  # the Rust side raises plain Exceptions for corrupt files
            raise ValueError(f"cannot read tokenizer {path}: {error}") from error
        return cls(backend, max_length, with_token_type_ids)

    def _new_backend(self, truncate_to: int | None = None) -> Tokenizer:
        backend = Tokenizer.from_str(self._template)
        backend.no_padding()
        if truncate_to is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(truncate_to, strategy="longest_first", direction="right")
        return backend

    def _pair_backend(self, max_length: int) -> Tokenizer:
        backend = self._pair_backends.get(max_length)
        if backend is None:
            with self._lock:
                backend = self._pair_backends.setdefault(max_length, self._new_backend(max_length))
        return backend

    def encode_pairs(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        """The pair template with `longest_first` truncation to `max_length` (the document is cut first)."""
        max_length = max_length or self.max_length
        if max_length <= self.num_special_tokens:
            raise ValueError(
                f"max_length {max_length} leaves no room for text after {self.num_special_tokens} special tokens"
            )
        backend = self._pair_backend(max_length)
        encodings = backend.encode_batch(list(pairs), add_special_tokens=True) if pairs else []
        return EncodedPairs(
            input_ids=[np.asarray(e.ids, dtype=np.int64) for e in encodings],
            token_type_ids=[np.asarray(e.type_ids, dtype=np.int64) for e in encodings]
            if self.with_token_type_ids
            else None,
            truncated=np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(encodings)),
        )

    def tokenize_texts(self, texts: Sequence[str]) -> list[TextTokens]:
        """Each text on its own: token offsets, without special tokens or truncation."""
        if not texts:
            return []
        encodings = self._texts_backend.encode_batch(list(texts), add_special_tokens=False)
        return [
            TextTokens(text, [(start, end) for start, end in e.offsets])
            for text, e in zip(texts, encodings, strict=True)
        ]

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of each text alone, without special tokens or truncation."""
        encodings = self._texts_backend.encode_batch(list(texts), add_special_tokens=False) if texts else []
        return np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))


@dataclass
class TextTokens:
    """One text tokenized alone (no special tokens, no truncation).

    Cutting and chunking work on these offsets: the character span of the first/last N tokens
    or of a window is a substring that then goes through `encode_pairs` like any document.
    Re-tokenizing a substring can differ from the original tokens by about one token at a cut
    (a word that lost its leading space), never more.
    """

    text: str
    offsets: list[tuple[int, int]]  # character span of each token

    def __len__(self) -> int:
        return len(self.offsets)

    def head(self, n: int) -> str:
        """The text of the first `n` tokens."""
        if n >= len(self.offsets):
            return self.text
        return "" if n <= 0 else self.text[: self.offsets[n - 1][1]]

    def tail(self, n: int) -> str:
        """The text of the last `n` tokens."""
        if n >= len(self.offsets):
            return self.text
        return "" if n <= 0 else self.text[self.offsets[len(self.offsets) - n][0] :]

    def char_span(self, start: int, stop: int) -> tuple[int, int]:
        """The character span [begin, end) of tokens `start:stop`."""
        return self.offsets[start][0], self.offsets[stop - 1][1]

    def span(self, start: int, stop: int) -> str:
        """The text of tokens `start:stop`."""
        begin, end = self.char_span(start, stop)
        return self.text[begin:end]

    def cut(self, n: int, side: str) -> str:
        return self.tail(n) if side == "left" else self.head(n)


def chunk_windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """Overlapping token windows covering `n_tokens`: `window` tokens each, consecutive windows
    sharing `chunk_overlap(window)` tokens, the last one aligned to the end of the text."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if n_tokens <= window:
        return [(0, n_tokens)]
    stride = window - chunk_overlap(window)
    starts = list(range(0, n_tokens - window, stride))
    starts.append(n_tokens - window)
    return [(s, s + window) for s in starts]


def chunk_overlap(window: int) -> int:
    """Tokens shared by consecutive windows: half the window, at most 128. Any span of that many
    tokens lies whole in one window, so an answer of a few sentences is never read only in halves:
    at a quarter (57 tokens in the bundled model's window), SciFact's answer-in-passage MRR of an
    abstract embedded in other text was 0.722, at a half 0.732 (docs/evaluation.md)."""
    return min(window // 2, 128)
