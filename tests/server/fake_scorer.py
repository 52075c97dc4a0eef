"""A deterministic `TokenizedPairScorer`, so protocol and batcher tests run in milliseconds.

Lives under tests/, not in the installed package. Tokens are whitespace-separated words,
lower-cased and hashed to ids; the pair template is `[CLS] query [SEP] document [SEP]` with
`longest_first` truncation, like the real tokenizer. The score of a pair is
`4 * (query words found in the document) / (query words) - 2`, a logit in [-2, 2]: documents
sharing no word with the query tie at -2.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Sequence

import numpy as np

from ettin_rerank.inference.tokenization import EncodedPairs, TextTokens

CLS_ID, SEP_ID = 1, 2
_WORD = re.compile(r"\S+")


def word_id(word: str) -> int:
    return 16 + zlib.crc32(word.lower().encode("utf-8")) % (2**31 - 16)


class FakeTokenizer:
    """The `PairTokenizer` interface over whitespace words."""

    num_special_tokens = 3
    with_token_type_ids = False

    def __init__(self, max_length: int):
        self.max_length = max_length

    def words(self, text: str) -> list[int]:
        return [word_id(m.group()) for m in _WORD.finditer(text)]

    def tokenize_texts(self, texts: Sequence[str]) -> list[TextTokens]:
        return [TextTokens(text, [m.span() for m in _WORD.finditer(text)]) for text in texts]

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
    """Word-overlap scores through the same `TokenizedPairScorer` interface as `Reranker`.

    `seconds_per_pair` makes `score_encoded` sleep, to simulate a slow engine in tests;
    `batches` records the rows of every `score_encoded` call, for tests of the batcher.
    """

    def __init__(self, max_length: int = 512, seconds_per_pair: float = 0.0, name: str = "ettin-fake-scorer"):
        self.tokenizer = FakeTokenizer(max_length)
        self.seconds_per_pair = seconds_per_pair
        self.name = name
        self.calibration = None  # a `Calibration` makes the server's default score calibrated
        self.license = None
        self.batches: list[int] = []

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def default_batch_tokens(self) -> int:
        return 8192

    def encode(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        return self.tokenizer.encode_pairs(list(pairs), max_length=max_length)

    def score_encoded(self, encoded: EncodedPairs) -> np.ndarray:
        self.batches.append(len(encoded))
        if self.seconds_per_pair:
            time.sleep(self.seconds_per_pair * len(encoded))
        return word_overlap(encoded)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The reference scores of tests: neither recorded in `batches` nor slowed down."""
        return word_overlap(self.encode(pairs))


def word_overlap(encoded: EncodedPairs) -> np.ndarray:
    scores = np.empty(len(encoded), dtype=np.float32)
    for row, ids in enumerate(encoded.input_ids):
        separators = np.flatnonzero(ids == SEP_ID)
        query = set(ids[1 : separators[0]].tolist())
        document = set(ids[separators[0] + 1 : separators[-1]].tolist())
        matched = len(query & document) / len(query) if query else 0.0
        scores[row] = 4.0 * matched - 2.0
    return scores
