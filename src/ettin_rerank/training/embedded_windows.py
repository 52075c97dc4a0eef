"""Training pairs that teach a student to read a relevant passage inside unrelated text.

A long document is scored in windows (`inference/long_documents.py`), and the window that holds
the answer is mostly text about something else. A teacher that pools a whole document into one
vector (the hybrid teacher's bi-encoder) scores such a window far below the answer alone, so its
student learns that surrounding text makes a passage less relevant, and a note whose answer sits
deep inside ranks below short notes that merely share the query's words.

This step adds, for each query of a scored training set, copies of a few short candidates
embedded at a random place among sentences cut from other documents of the same corpus, filling
the student's window. Their target is the candidate's own teacher score: the relevance of a
window is the relevance of its most relevant part (the sentences around it come from documents
mined for other queries, never from this query's own candidates). One window of filler alone is added
too, scored as the query's least relevant candidate: random text from the corpus is at most as
relevant as anything the first stage mined for it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
from tokenizers import Tokenizer

from .io import (
    MANIFEST,
    TRAIN_COLUMNS,
    read_table,
    require_same_settings,
    shard_path,
    utc_now,
    write_atomic,
    write_json_atomic,
)
from .pseudo_queries import sentences_of

SPECIAL_TOKENS_PER_PAIR = 3  # [CLS] query [SEP] document [SEP]


@dataclass(frozen=True)
class EmbeddedWindowSettings:
    max_length: int = 256  # tokens per pair the student trains on: windows fill it without being cut
    source_tokens: int = 120  # only candidates at most this long are embedded (they must fit whole)
    per_query: int = 4  # embedded candidates per query: the best-scored, the labelled ones, then random
    min_fill: float = 0.6  # a window fills between this share of the free tokens and all of them
    seed: int = 12


def _filler_pools(table: pa.Table, tokenizer: Tokenizer) -> dict[str, list[tuple[str, str, int]]]:
    """Per dataset: (doc_id, sentence, tokens) for the sentences of every distinct document."""
    pools: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for dataset, doc_id, document in zip(
        table.column("dataset").to_pylist(),
        table.column("doc_id").to_pylist(),
        table.column("document").to_pylist(),
        strict=True,
    ):
        if (dataset, doc_id) in seen:
            continue
        seen.add((dataset, doc_id))
        for sentence in sentences_of(document, min_words=5, window_words=30):
            pools[dataset].append((doc_id, sentence, 0))
    for dataset, pool in pools.items():
        counts = tokenizer.encode_batch([s for _, s, _ in pool], add_special_tokens=False)
        pools[dataset] = [(d, s, len(c.ids)) for (d, s, _), c in zip(pool, counts, strict=True)]
    return pools


def _fill(
    budget: int,
    exclude: set[str],
    pool: list[tuple[str, str, int]],
    rng: random.Random,
    draws: int = 64,
) -> list[str]:
    """Random sentences from `pool` (none from the `exclude`d documents) of at most `budget` tokens;
    a sentence too long for what is left is passed over."""
    sentences: list[str] = []
    used = 0
    for _ in range(draws if pool else 0):
        doc_id, sentence, tokens = pool[rng.randrange(len(pool))]
        if doc_id not in exclude and used + tokens <= budget:
            sentences.append(sentence)
            used += tokens
    return sentences


def embed_in_filler(
    table: pa.Table, tokenizer: Tokenizer, settings: EmbeddedWindowSettings | None = None
) -> pa.Table:
    """`table` (a `select` output: scored pairs grouped by query) with the embedded windows added.

    `tokenizer` is the student's, without padding or truncation (lengths are counted with it)."""
    settings = settings or EmbeddedWindowSettings()
    rng = random.Random(settings.seed)
    pools = _filler_pools(table, tokenizer)
    rows = table.to_pylist()
    document_tokens = [
        len(e.ids) for e in tokenizer.encode_batch([r["document"] for r in rows], add_special_tokens=False)
    ]
    by_query: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_query[row["query_id"]].append(index)
    added: list[dict] = []
    for query_id, indices in by_query.items():
        first = rows[indices[0]]
        pool = pools[first["dataset"]]
        query_tokens = len(tokenizer.encode(first["query"], add_special_tokens=False).ids)
        free = settings.max_length - SPECIAL_TOKENS_PER_PAIR - query_tokens
        exclude = {rows[i]["doc_id"] for i in indices}
        short = [i for i in indices if document_tokens[i] <= min(settings.source_tokens, free // 2)]
        best = max(short, key=lambda i: rows[i]["teacher_score"], default=None)
        labelled = [i for i in short if rows[i].get("label", 0) > 0]
        others = [i for i in short if i != best and i not in labelled]
        rng.shuffle(others)
        sources = list(dict.fromkeys([*([best] if best is not None else []), *labelled, *others]))
        for i in sources[: settings.per_query]:
            target = rng.randint(int(settings.min_fill * free), free) - document_tokens[i]
            filler = _fill(target, exclude, pool, rng)
            if not filler:
                continue
            filler.insert(rng.randint(0, len(filler)), rows[i]["document"])
            added.append(
                {
                    **rows[i],
                    "doc_id": f"{rows[i]['doc_id']}@window",
                    "document": " ".join(filler),
                    "selection": "window",
                }
            )
        filler = _fill(rng.randint(int(settings.min_fill * free), free), exclude, pool, rng)
        if filler:
            lowest = min(indices, key=lambda i: rows[i]["teacher_score"])
            added.append(
                {
                    **rows[lowest],
                    "doc_id": f"{query_id}@filler",
                    "document": " ".join(filler),
                    "label": 0,
                    "selection": "filler",
                }
            )
    if not added:
        return table
    extra = pa.Table.from_pylist(added, schema=table.schema)
    # each query's new pairs follow its own: margin-mse groups rows by query id, not by position
    return pa.concat_tables([table, extra]).combine_chunks()


def write_embedded_window_dataset(
    selected_dir: str | Path,
    output_dir: str | Path,
    tokenizer_path: str | Path,
    settings: EmbeddedWindowSettings | None = None,
) -> Path:
    """OUTPUT/{train,heldout}/part-00000.parquet: each split of `selected_dir` with its embedded
    windows added. A finished output with the same settings is kept (its manifest is written last)."""
    settings = settings or EmbeddedWindowSettings()
    output = Path(output_dir)
    recorded = asdict(settings)
    if require_same_settings(output, recorded, "embedded windows") is not None:
        return output
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rows: dict[str, int] = {}
    for split in ("train", "heldout"):
        source = Path(selected_dir) / split
        if not source.is_dir():
            continue
        table = embed_in_filler(read_table(source, TRAIN_COLUMNS, "embedded windows"), tokenizer, settings)
        write_atomic(table, shard_path(output / split, 0))
        rows[split] = table.num_rows
    manifest = {"settings": recorded, "source": str(selected_dir), "tokenizer": str(tokenizer_path)}
    write_json_atomic({**manifest, "rows": rows, "created_at": utc_now()}, output / MANIFEST)
    return output
