"""Benchmark workloads built from a BEIR-format dataset (corpus.jsonl + queries.jsonl)."""

from __future__ import annotations

import random
from pathlib import Path

from ..inference.tokenization import PairTokenizer
from ..retrieval.beir import load_corpus, load_queries


def _texts(data_dir: str | Path) -> tuple[list[str], list[str]]:
    data_dir = Path(data_dir)
    corpus = load_corpus(data_dir / "corpus.jsonl")
    queries = load_queries(data_dir / "queries.jsonl")
    documents = [doc.text_for_scoring for doc in corpus.values()]
    if not documents or not queries:
        raise ValueError(f"{data_dir} has no documents or no queries; pass a BEIR-format directory")
    return list(queries.values()), documents


def beir_short_pairs(
    data_dir: str | Path, num_queries: int = 10, docs_per_query: int = 100, seed: int = 0
) -> list[tuple[str, str]]:
    """`num_queries` queries, each paired with `docs_per_query` corpus documents (a seeded sample)."""
    queries, documents = _texts(data_dir)
    rng = random.Random(seed)
    chosen = rng.sample(queries, min(num_queries, len(queries)))
    return [(q, d) for q in chosen for d in rng.sample(documents, min(docs_per_query, len(documents)))]


def long_pairs(
    data_dir: str | Path,
    tokenizer: PairTokenizer,
    num_docs: int = 20,
    min_tokens: int = 2000,
    max_tokens: int = 8000,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """Documents of `min_tokens` to `max_tokens` tokens made by concatenating corpus texts.

    Each document's target length is drawn uniformly; texts are appended (cycling through
    a shuffled corpus) until their token count reaches it.
    """
    if not 0 < min_tokens <= max_tokens:
        raise ValueError(f"need 0 < min_tokens <= max_tokens, got {min_tokens}, {max_tokens}")
    queries, documents = _texts(data_dir)
    rng = random.Random(seed)
    rng.shuffle(documents)
    counts = tokenizer.count_tokens(documents)
    pairs, cursor = [], 0
    for _ in range(num_docs):
        target = rng.randint(min_tokens, max_tokens)
        parts, total = [], 0
        while total < target:
            parts.append(documents[cursor % len(documents)])
            total += int(counts[cursor % len(documents)]) + 1
            cursor += 1
        pairs.append((rng.choice(queries), " ".join(parts)))
    return pairs
