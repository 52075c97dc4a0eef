"""`select`: the recipe's subsampling by teacher rank, deterministic by seed."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ettin_rerank.training.io import PROVENANCE_COLUMNS, provenance_summary, read_table
from ettin_rerank.training.selection import select_for_query, select_training_pairs


def _scored(path, n_queries=3, per_query=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("query_id", "query", "doc_id", "document", "label", "teacher_score")}
    for q in range(n_queries):
        scores = rng.normal(0, 4, per_query)
        positives = set(rng.choice(per_query, 3, replace=False).tolist())
        for d in range(per_query):
            rows["query_id"].append(f"q{q}")
            rows["query"].append(f"query {q}")
            rows["doc_id"].append(f"d{q}-{d}")
            rows["document"].append(f"doc {d}")
            rows["label"].append(1 if d in positives else 0)
            rows["teacher_score"].append(float(scores[d]))
    table = pa.table(rows)
    for name in PROVENANCE_COLUMNS:
        table = table.append_column(name, pa.array([f"{name}-value"] * table.num_rows))
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / "part-00000.parquet")
    return table


def test_stage_one_keeps_positives_top_and_stratified_rest():
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, 2048)
    labels = np.zeros(2048, dtype=int)
    ranks = np.argsort(-scores, kind="stable")
    labels[ranks[[100, 1500, 2047]]] = 1  # positives far down the teacher ranking
    chosen, _ = select_for_query(
        scores, labels, np.random.default_rng(0), keep=256, top_hard=16, per_query=256
    )
    chosen_ranks = np.sort(np.searchsorted(-scores[ranks], -scores[chosen]))
    assert len(chosen) == 256 and len(set(chosen.tolist())) == 256
    assert set(ranks[:16]) <= set(chosen.tolist())
    assert {ranks[100], ranks[1500], ranks[2047]} <= set(chosen.tolist())
    # The rest is spread over the whole ranking: every eighth of it is represented about equally.
    counts = np.histogram(chosen_ranks[chosen_ranks >= 16], bins=8, range=(16, 2048))[0]
    assert counts.min() >= 25, counts


def test_stage_two_half_top_half_medium_band():
    scores = np.linspace(10, -10, 256)  # already in rank order
    labels = np.zeros(256, dtype=int)
    chosen, tags = select_for_query(
        scores, labels, np.random.default_rng(0), keep=256, per_query=64, medium_band=(0.25, 0.75)
    )
    assert len(chosen) == 64
    assert sorted(chosen[tags == 0].tolist()) == list(range(32))
    medium = chosen[tags == 1]
    assert len(medium) == 32 and medium.min() >= 64 and medium.max() < 192


def test_fewer_candidates_than_asked_keeps_them_all():
    chosen, _ = select_for_query(
        np.array([1.0, 3.0, 2.0]), np.zeros(3), np.random.default_rng(0), keep=256, per_query=64
    )
    assert chosen.tolist() == [1, 2, 0]


def test_select_is_deterministic_order_independent_and_keeps_provenance(tmp_path):
    table = _scored(tmp_path / "scored")
    select_training_pairs(
        tmp_path / "scored", tmp_path / "a", keep=64, per_query=16, heldout_queries=1, seed=3
    )
    select_training_pairs(
        tmp_path / "scored", tmp_path / "b", keep=64, per_query=16, heldout_queries=1, seed=3
    )
    shuffled = table.take(pa.array(np.random.default_rng(5).permutation(table.num_rows)))
    (tmp_path / "shuffled").mkdir()
    pq.write_table(shuffled, tmp_path / "shuffled" / "part-00000.parquet")
    select_training_pairs(
        tmp_path / "shuffled", tmp_path / "c", keep=64, per_query=16, heldout_queries=1, seed=3
    )
    select_training_pairs(
        tmp_path / "scored", tmp_path / "d", keep=64, per_query=16, heldout_queries=1, seed=4
    )

    def picked(name, part="train"):
        t = pq.read_table(tmp_path / name / part)
        return sorted(zip(t.column("query_id").to_pylist(), t.column("doc_id").to_pylist(), strict=True))

    assert picked("a") == picked("b")
    assert set(picked("a") + picked("a", "heldout")) == set(picked("c") + picked("c", "heldout"))
    assert picked("a") != picked("d")
    train, heldout = pq.read_table(tmp_path / "a" / "train"), pq.read_table(tmp_path / "a" / "heldout")
    assert train.num_rows == 2 * 16 and heldout.num_rows == 16
    assert not set(train.column("query_id").to_pylist()) & set(heldout.column("query_id").to_pylist())
    for name in ("dataset", "split", "first_stage", "teacher"):
        assert set(train.column(name).to_pylist()) == {f"{name}-value"}
    assert set(train.column("selection").to_pylist()) == {"top", "medium"}


def test_select_rejects_missing_columns(tmp_path):
    (tmp_path / "bad").mkdir()
    pq.write_table(
        pa.table({"query_id": ["q"], "query": ["x"], "doc_id": ["d"], "document": ["y"]}),
        tmp_path / "bad" / "p.parquet",
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label', 'teacher_score'\]"):
        select_training_pairs(tmp_path / "bad", tmp_path / "out")


def test_provenance_summary_names_every_source_of_a_merged_training_set(tmp_path):
    """A training set merged from several datasets (the default model's stage two) reports them all,
    not the first shard's."""
    one = _scored(tmp_path / "merged" / "a", n_queries=1, per_query=4)
    other = one.set_column(
        one.column_names.index("dataset"), "dataset", pa.array(["cranfield"] * one.num_rows)
    ).set_column(one.column_names.index("query_id"), "query_id", pa.array(["cranfield:q0"] * one.num_rows))
    pq.write_table(other, tmp_path / "merged" / "b.parquet")
    (tmp_path / "merged" / "a" / "part-00000.parquet").rename(tmp_path / "merged" / "a.parquet")
    merged = read_table(tmp_path / "merged", ("query_id",), "distill")
    summary = provenance_summary(merged)
    assert summary["dataset"] == ["cranfield", "dataset-value"]
    assert summary["teacher"] == "teacher-value"
    # `select` over the merged set keeps each row's own source rather than stamping the first shard's
    select_training_pairs(tmp_path / "merged", tmp_path / "selected", keep=4, per_query=4, seed=0)
    selected = pq.read_table(tmp_path / "selected" / "train")
    assert sorted(set(selected.column("dataset").to_pylist())) == ["cranfield", "dataset-value"]


def test_a_training_set_merged_from_steps_with_different_integer_widths_reads_as_one(tmp_path):
    """Stage four's groups (label int64) and `select`'s output (label int32) meet in one training set."""
    rows = {"query_id": ["q"], "query": ["x"], "doc_id": ["d"], "document": ["y"], "teacher_score": [1.0]}
    (tmp_path / "merged").mkdir()
    pq.write_table(pa.table({**rows, "label": pa.array([1], pa.int64())}), tmp_path / "merged" / "a.parquet")
    pq.write_table(pa.table({**rows, "label": pa.array([0], pa.int32())}), tmp_path / "merged" / "b.parquet")
    merged = read_table(tmp_path / "merged", ("query_id", "label"), "distill")
    assert merged.column("label").type == pa.int64()
    assert merged.column("label").to_pylist() == [1, 0]
