"""A deterministic stand-in for `Reranker`, so protocol tests and demos run in milliseconds.

Tokens are whitespace-separated words, lower-cased and hashed to ids; the pair template is
`[CLS] query [SEP] document [SEP]` with `longest_first` truncation, like the real tokenizer.
The score of a pair is `4 * (query words found in the document) / (query words) - 2`, a
logit in [-2, 2]: documents sharing no word with the query tie at -2.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.tokenization import EncodedPairs

CLS_ID, SEP_ID = 1, 2
_WORD = re.compile(r"\S+")


@dataclass
class _Encoding:
    ids: list[int]
    offsets: list[tuple[int, int]]


def word_id(word: str) -> int:
    return 16 + zlib.crc32(word.lower().encode("utf-8")) % (2**31 - 16)


class WhitespaceBackend:
    """Duck-types the parts of `tokenizers.Tokenizer` the service uses."""

    def no_truncation(self) -> None:
        pass

    def encode_batch(self, input: list[str], add_special_tokens: bool = True) -> list[_Encoding]:
        out = []
        for text in input:
            matches = list(_WORD.finditer(text))
            ids = [word_id(m.group()) for m in matches]
            offsets = [m.span() for m in matches]
            if add_special_tokens:
                ids, offsets = [CLS_ID, *ids, SEP_ID], [(0, 0), *offsets, (0, 0)]
            out.append(_Encoding(ids, offsets))
        return out


class FakeTokenizer:
    num_special_tokens = 3
    with_token_type_ids = False

    def __init__(self, max_length: int):
        self.backend = WhitespaceBackend()
        self.max_length = max_length

    def words(self, text: str) -> list[int]:
        return [word_id(m.group()) for m in _WORD.finditer(text)]

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        return np.fromiter((len(self.words(t)) for t in texts), dtype=np.int64, count=len(texts))

    def encode_pairs(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        max_length = max_length or self.max_length
        budget = max_length - self.num_special_tokens
        if budget < 1:
            raise ValueError(
                f"max_length {max_length} leaves no room for text after {self.num_special_tokens} special tokens"
            )
        ids, truncated = [], []
        for query, document in pairs:
            q, d = self.words(query), self.words(document)
            cut = len(q) + len(d) > budget
            if cut:  # longest_first: the longer side loses tokens from its end until the pair fits
                q_len = min(len(q), budget // 2) if len(q) <= len(d) else budget - min(len(d), budget // 2)
                q, d = q[:q_len], d[: budget - q_len]
            ids.append(np.asarray([CLS_ID, *q, SEP_ID, *d, SEP_ID], dtype=np.int64))
            truncated.append(cut)
        return EncodedPairs(input_ids=ids, token_type_ids=None, truncated=np.asarray(truncated, dtype=bool))


class FakeScorer:
    """Word-overlap scores through the same `encode` / `predict_encoded` interface as `Reranker`.

    `seconds_per_pair` makes `predict_encoded` sleep, to simulate a slow engine in tests.
    """

    def __init__(
        self, max_length: int = 512, seconds_per_pair: float = 0.0, name_or_path: str = "ettin-fake-scorer"
    ):
        self.tokenizer = FakeTokenizer(max_length)
        self.seconds_per_pair = seconds_per_pair
        self.name_or_path = name_or_path
        self.batches: list[int] = []  # pairs per predict_encoded call, for tests of the batcher

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def default_batch_tokens(self) -> int:
        return 8192

    def encode(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        return self.tokenizer.encode_pairs(list(pairs), max_length=max_length)

    def predict_encoded(
        self, encoded: EncodedPairs, batch_tokens: int | None = None, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        del batch_tokens, show_progress_bar
        self.batches.append(len(encoded))
        if self.seconds_per_pair:
            time.sleep(self.seconds_per_pair * len(encoded))
        scores = np.empty(len(encoded), dtype=np.float32)
        for row, ids in enumerate(encoded.input_ids):
            separators = np.flatnonzero(ids == SEP_ID)
            query = set(ids[1 : separators[0]].tolist())
            document = set(ids[separators[0] + 1 : separators[-1]].tolist())
            matched = len(query & document) / len(query) if query else 0.0
            scores[row] = 4.0 * matched - 2.0
        return scores

    def predict(self, pairs: Sequence[tuple[str, str]], activation: str | None = None) -> np.ndarray:
        from ..inference.reranker import apply_activation

        return apply_activation(self.predict_encoded(self.encode(pairs)), activation)
