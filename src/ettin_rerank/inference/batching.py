"""Length-sorted token-budget batches over packed (unpadded) pairs, streamed.

Everything here works per batch or per chunk of pairs, never per token in Python:
lengths are numpy arrays, packing is one `np.concatenate`, and the sequence layout is
built by `Packing.from_lengths` with vectorised torch ops.

Two producers feed the model:
- `iter_packed(encoded, batch_tokens)`: batches of already tokenized pairs (the server
  path).
- `iter_pair_batches(pairs, tokenizer, batch_tokens)`: raw text pairs, tokenized chunk by
  chunk in a background thread while the model scores the previous chunk. At most one
  chunk waits tokenized and one is being tokenized, so memory stays bounded for any input size.

Both pack `prefetch` batches ahead in a background thread, or in the consumer's thread when
`prefetch` is 0: `packing_prefetch(device)` decides which.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..modeling.attention import Packing
from ..modeling.encoder import PackedInputs
from .tokenization import EncodedPairs, PairTokenizer

# Pairs tokenized per chunk when streaming raw text; each chunk is length-sorted on its own.
DEFAULT_CHUNK_PAIRS = 4096
# ... and at most this many characters (about 1M tokens): the tokenizer's intermediate
# encodings cost far more per token than the int64 ids kept, so long documents need small chunks.
DEFAULT_CHUNK_CHARS = 4_000_000
# Packed batches a background thread may hold ready ahead of the model, where one packs ahead.
DEFAULT_PREFETCH = 2


def packing_prefetch(device: torch.device) -> int:
    """Packed batches to prepare ahead of the model in a background thread on `device`.

    None on a CPU: packing runs torch ops, and torch ops in a second thread give it an OpenMP team
    of its own beside the model's, on the same cores. With one such thread alive the model's
    threads blocked about 4,800 times per 100 pairs of the random 17m (a few dozen without it) and
    scoring took 8-15% longer, against the 0.3 ms per batch that packing costs
    (docs/speed.md, "Packing in the scoring thread"). On a GPU the model waits for the host
    between batches, so packing ahead pays.
    """
    return 0 if device.type == "cpu" else DEFAULT_PREFETCH


def plan_batches(lengths: np.ndarray, batch_tokens: int, max_pairs: int | None = None) -> list[np.ndarray]:
    """Group pair indices into batches of at most `batch_tokens` real tokens (and at most
    `max_pairs` pairs, when given), longest first.

    A pair longer than the budget gets a batch of its own. Sorting by length keeps the
    per-sequence work of a batch similar (global attention groups need little padding) and
    makes the largest batch come first, so memory peaks early rather than at the end.
    """
    if batch_tokens <= 0:
        raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
    if max_pairs is not None and max_pairs <= 0:
        raise ValueError(f"batch_size must be positive, got {max_pairs}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if not len(lengths):
        return []
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    batches: list[np.ndarray] = []
    start = 0
    total = len(order)
    while start < total:
        # Longest prefix of the remaining (sorted) pairs that fits the budget; at least one pair.
        cumulative = np.cumsum(sorted_lengths[start : start + batch_tokens])
        count = max(1, int(np.searchsorted(cumulative, batch_tokens, side="right")))
        if max_pairs is not None:
            count = min(count, max_pairs)
        batches.append(order[start : start + count])
        start += count
    return batches


def pack(encoded: EncodedPairs, indices: np.ndarray) -> PackedInputs:
    """Concatenate the selected pairs into one packed batch (CPU tensors)."""
    input_ids = torch.from_numpy(np.concatenate([encoded.input_ids[i] for i in indices]))
    token_type_ids = (
        None
        if encoded.token_type_ids is None
        else torch.from_numpy(np.concatenate([encoded.token_type_ids[i] for i in indices]))
    )
    lengths = [len(encoded.input_ids[i]) for i in indices]
    return PackedInputs(input_ids, token_type_ids, Packing.from_lengths(lengths))


def _iter_packed_now(encoded: EncodedPairs, batch_tokens: int, offset: int = 0, max_pairs: int | None = None):
    for indices in plan_batches(encoded.lengths, batch_tokens, max_pairs):
        yield indices + offset, pack(encoded, indices)


_DONE = object()
# the background threads' names, for a reader of `threading.enumerate()`, a profiler or `py-spy`
TOKENIZING_THREAD = "ettin-rerank-tokenize"
PACKING_THREAD = "ettin-rerank-pack"


def background(
    items: Iterable, prefetch: int = DEFAULT_PREFETCH, name: str = "ettin-rerank-background"
) -> Generator:
    """Run an iterator in a daemon thread named `name`, at most `prefetch` items ahead (in the
    consumer's thread when `prefetch` is 0); errors re-raise here.

    The consumer may stop early: the producer then exits at its next `put`.
    """
    if prefetch <= 0:
        yield from items
        return
    buffer: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((None, _DONE))
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put((error, None))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            error, item = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()


def iter_packed(
    encoded: EncodedPairs, batch_tokens: int, prefetch: int = DEFAULT_PREFETCH, max_pairs: int | None = None
) -> Iterator[tuple[np.ndarray, PackedInputs]]:
    """(indices into `encoded`, packed batch) pairs, longest first, packed `prefetch` batches ahead."""
    return background(_iter_packed_now(encoded, batch_tokens, max_pairs=max_pairs), prefetch, PACKING_THREAD)


def iter_pair_batches(
    pairs: Sequence[tuple[str, str]],
    encode: Callable[[Sequence[tuple[str, str]]], EncodedPairs] | PairTokenizer,
    batch_tokens: int,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
    prefetch: int = DEFAULT_PREFETCH,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    max_pairs: int | None = None,
) -> Iterator[tuple[np.ndarray, PackedInputs]]:
    """Tokenize `pairs` chunk by chunk in the background and yield packed batches.

    A chunk holds at most `chunk_pairs` pairs and about `chunk_chars` characters (at least
    one pair). Indices refer to positions in `pairs`. Within a chunk, batches are length-sorted.
    The tokenizing thread runs no torch op (see `packing_prefetch`); batches are packed
    `prefetch` ahead in a thread of their own, or as they are asked for when `prefetch` is 0.
    """
    if chunk_pairs <= 0 or chunk_chars <= 0:
        raise ValueError(f"chunk_pairs and chunk_chars must be positive, got {chunk_pairs}, {chunk_chars}")
    encode_fn = encode.encode_pairs if isinstance(encode, PairTokenizer) else encode
    chunks = background(
        (
            (start, encode_fn(pairs[start:end]))
            for start, end in chunk_bounds(pairs, chunk_pairs, chunk_chars)
        ),
        prefetch=1,
        name=TOKENIZING_THREAD,
    )

    def packed() -> Iterator[tuple[np.ndarray, PackedInputs]]:
        try:
            for start, encoded in chunks:
                yield from _iter_packed_now(encoded, batch_tokens, start, max_pairs)
        finally:  # a consumer that stops early stops the tokenizing thread too
            chunks.close()

    return background(packed(), prefetch, PACKING_THREAD)


def chunk_bounds(
    pairs: Sequence[tuple[str, str]], chunk_pairs: int, chunk_chars: int
) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive chunks of at most `chunk_pairs` pairs and ~`chunk_chars` characters."""
    start, chars = 0, 0
    for position, (query, document) in enumerate(pairs):
        size = len(query) + len(document)
        if position > start and (position - start >= chunk_pairs or chars + size > chunk_chars):
            yield start, position
            start, chars = position, 0
        chars += size
    if start < len(pairs):
        yield start, len(pairs)
