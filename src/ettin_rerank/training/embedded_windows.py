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

from ..inference.tokenization import PairTokenizer
from ..sentences import sentences_of
from .io import (
    TRAIN_COLUMNS,
    read_table,
    require_same_settings,
    shard_path,
    utc_now,
    write_atomic,
    write_manifest,
)


@dataclass(frozen=True)
class EmbeddedWindowSettings:
    max_length: int = 256  # tokens per pair the student trains on: windows fill it without being cut
    source_tokens: int = 120  # only candidates at most this long are embedded (they must fit whole)
    per_query: int = 4  # embedded candidates per query: the best-scored, the labelled ones, then random
    min_fill: float = 0.6  # a window fills between this share of the free tokens and all of them
    seed: int = 12


def _filler_pools(table: pa.Table, tokenizer: PairTokenizer) -> dict[str, list[tuple[str, str, int]]]:
    """Per dataset: (doc_id, sentence, tokens) for the sentences of every distinct document."""
    sentences: dict[str, list[tuple[str, str]]] = defaultdict(list)
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
        sentences[dataset].extend((doc_id, s) for s in sentences_of(document, min_words=5, window_words=30))
    return {
        dataset: [
            (doc_id, sentence, int(tokens))
            for (doc_id, sentence), tokens in zip(
                pool, tokenizer.count_tokens([s for _, s in pool]), strict=True
            )
        ]
        for dataset, pool in sentences.items()
    }


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
    table: pa.Table, tokenizer: PairTokenizer, settings: EmbeddedWindowSettings | None = None
) -> pa.Table:
    """`table` (a `select` output: scored pairs grouped by query) with the embedded windows added;
    lengths are counted with the student's `tokenizer`."""
    settings = settings or EmbeddedWindowSettings()
    rng = random.Random(settings.seed)
    pools = _filler_pools(table, tokenizer)
    rows = table.to_pylist()
    document_tokens = tokenizer.count_tokens([r["document"] for r in rows])
    by_query: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_query[row["query_id"]].append(index)
    added: list[dict] = []
    for query_id, indices in by_query.items():
        first = rows[indices[0]]
        pool = pools[first["dataset"]]
        query_tokens = int(tokenizer.count_tokens([first["query"]])[0])
        free = settings.max_length - tokenizer.num_special_tokens - query_tokens
        exclude = {rows[i]["doc_id"] for i in indices}
        short = [i for i in indices if document_tokens[i] <= min(settings.source_tokens, free // 2)]
        best = max(short, key=lambda i: rows[i]["teacher_score"], default=None)
        labelled = [i for i in short if rows[i].get("label", 0) > 0]
        others = [i for i in short if i != best and i not in labelled]
        rng.shuffle(others)
        sources = list(dict.fromkeys([*([best] if best is not None else []), *labelled, *others]))
        for i in sources[: settings.per_query]:
            target = rng.randint(int(settings.min_fill * free), free) - int(document_tokens[i])
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
    # appended after all original rows: margin-mse groups rows by query id, not by position
    return pa.concat_tables([table, extra]).combine_chunks()


def write_embedded_window_dataset(
    selected_dir: str | Path,
    output_dir: str | Path,
    tokenizer_dir: str | Path,
    settings: EmbeddedWindowSettings | None = None,
) -> Path:
    """OUTPUT/{train,heldout}/part-00000.parquet: each split of `selected_dir` with its embedded
    windows added. A finished output with the same settings is kept (its manifest is written last)."""
    settings = settings or EmbeddedWindowSettings()
    output = Path(output_dir)
    recorded = asdict(settings)
    if require_same_settings(output, recorded, "embedded windows") is not None:
        return output
    tokenizer = PairTokenizer.from_dir(tokenizer_dir, settings.max_length, with_token_type_ids=False)
    rows: dict[str, int] = {}
    for split in ("train", "heldout"):
        source = Path(selected_dir) / split
        if not source.is_dir():
            continue
        table = embed_in_filler(read_table(source, TRAIN_COLUMNS, "embedded windows"), tokenizer, settings)
        write_atomic(table, shard_path(output / split, 0))
        rows[split] = table.num_rows
    manifest = {"settings": recorded, "source": str(selected_dir), "tokenizer": str(tokenizer_dir)}
    write_manifest(output, {**manifest, "rows": rows, "created_at": utc_now()})
    return output
