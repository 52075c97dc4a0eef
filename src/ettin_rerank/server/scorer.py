"""What the service needs from a scorer, and token-level text cutting on top of it.

Both `ettin_rerank.Reranker` and the package's `FakeScorer` satisfy `Scorer`. The service
tokenizes every pair with `scorer.encode` (the same tokenization, template and truncation as
`Reranker.predict`) and scores merged batches with `scorer.predict_encoded`.

Request-level truncation (Cohere's `max_tokens_per_doc`, TEI's left `truncation_direction`)
and chunking work on the tokens of a text alone: its token offsets give the character span
of the first/last N tokens or of a window, and that substring then goes through `encode`
like any document. Re-tokenizing a substring can differ from the original tokens by about
one token at a cut (a word that lost its leading space), never more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..inference.tokenization import EncodedPairs


class TokenizerBackend(Protocol):
    """The slice of `tokenizers.Tokenizer` used here."""

    def no_truncation(self) -> None: ...

    def encode_batch(
        self, input: list[Any], add_special_tokens: bool = True
    ) -> list[Any]: ...  # items: .ids, .offsets


class PairTokenizerLike(Protocol):
    backend: TokenizerBackend
    num_special_tokens: int  # tokens the pair template adds around (query, document)
    max_length: int


@runtime_checkable
class Scorer(Protocol):
    name_or_path: str
    tokenizer: PairTokenizerLike

    @property
    def max_length(self) -> int: ...

    def encode(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs: ...

    def predict_encoded(
        self, encoded: EncodedPairs, batch_tokens: int | None = None, show_progress_bar: bool | None = None
    ) -> np.ndarray: ...

    def default_batch_tokens(self) -> int: ...


@dataclass
class TextTokens:
    """One text tokenized alone (no special tokens, no truncation)."""

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

    def span(self, start: int, stop: int) -> str:
        """The text of tokens `start:stop`."""
        return self.text[self.offsets[start][0] : self.offsets[stop - 1][1]]

    def cut(self, n: int, side: str) -> str:
        return self.tail(n) if side == "left" else self.head(n)


def tokenize_alone(scorer: Scorer, texts: Sequence[str]) -> list[TextTokens]:
    """Token offsets of each text on its own. Not thread-safe (the backend's truncation is state):
    call it from the one thread that also calls `scorer.encode`."""
    if not texts:
        return []
    backend = scorer.tokenizer.backend
    backend.no_truncation()
    encodings = backend.encode_batch(list(texts), add_special_tokens=False)
    return [TextTokens(text, [tuple(o) for o in e.offsets]) for text, e in zip(texts, encodings, strict=True)]


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
    """Tokens shared by consecutive windows: a quarter of the window, at most 128."""
    return min(window // 4, 128)
