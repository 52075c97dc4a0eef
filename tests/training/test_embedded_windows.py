"""Embedded windows: short candidates placed among other documents' sentences, scored as themselves."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from ettin_rerank.inference.tokenization import PairTokenizer
from ettin_rerank.training.embedded_windows import (
    EmbeddedWindowSettings,
    embed_in_filler,
    write_embedded_window_dataset,
)

from .conftest import write_pairs


@pytest.fixture
def tokenizer(bert_tokenizer_dir):
    return PairTokenizer.from_dir(bert_tokenizer_dir, 96, with_token_type_ids=False)


def test_windows_hold_a_candidate_whole_among_other_queries_documents(tmp_path, tokenizer):
    table = pq.read_table(write_pairs(tmp_path / "pairs", n_queries=6, per_query=8))
    settings = EmbeddedWindowSettings(max_length=96, source_tokens=40, per_query=3)
    out = embed_in_filler(table, tokenizer, settings)

    original, added = out.slice(0, table.num_rows), out.slice(table.num_rows).to_pylist()
    assert original.equals(table)
    by_query = {}
    for row in table.to_pylist():
        by_query.setdefault(row["query_id"], []).append(row)
    windows = [row for row in added if row["doc_id"].endswith("@window")]
    fillers = [row for row in added if row["doc_id"] == f"{row['query_id']}@filler"]
    assert len(fillers) == 6 and 6 <= len(windows) <= 18

    for row in added:
        own = by_query[row["query_id"]]
        pair_tokens = len(tokenizer.encode_pairs([(row["query"], row["document"])], 10_000).input_ids[0])
        assert pair_tokens <= settings.max_length  # never cut: the window is read whole
        if row in windows:
            source = next(r for r in own if r["doc_id"] == row["doc_id"].removesuffix("@window"))
            assert source["document"] in row["document"] and len(row["document"]) > len(source["document"])
            assert row["teacher_score"] == source["teacher_score"] and row["label"] == source["label"]
            rest = row["document"].replace(source["document"], "")
        else:
            assert row["label"] == 0
            assert row["teacher_score"] == min(r["teacher_score"] for r in own)
            rest = row["document"]
        # the filler comes from documents mined for other queries, never this query's own
        assert not any(r["document"] in rest for r in own)


def test_the_dataset_is_written_once_and_not_resumed_with_other_settings(tmp_path, bert_tokenizer_dir):
    selected = tmp_path / "selected"
    write_pairs(selected / "train", n_queries=4, seed=1)
    write_pairs(selected / "heldout", n_queries=2, seed=2)
    settings = EmbeddedWindowSettings(max_length=96, source_tokens=40)

    out = write_embedded_window_dataset(selected, tmp_path / "windows", bert_tokenizer_dir, settings)
    train = pq.read_table(out / "train" / "part-00000.parquet")
    assert train.num_rows > 4 * 8 and pq.read_table(out / "heldout" / "part-00000.parquet").num_rows > 2 * 8
    stamp = (out / "train" / "part-00000.parquet").stat().st_mtime_ns

    write_embedded_window_dataset(selected, tmp_path / "windows", bert_tokenizer_dir, settings)
    assert (out / "train" / "part-00000.parquet").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other settings"):
        write_embedded_window_dataset(
            selected, tmp_path / "windows", bert_tokenizer_dir, EmbeddedWindowSettings(max_length=128)
        )
