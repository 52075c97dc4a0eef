"""`score-teacher`: exactly-once sharded scoring, kill-and-resume, Ray equals local, early errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ettin_rerank.training.io import PROVENANCE_COLUMNS, shard_path
from ettin_rerank.training.scoring import score_teacher

from .conftest import cli, kill_when, make_teacher, write_pairs


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, modernbert_tokenizer_dir):
    return make_teacher(tmp_path_factory.mktemp("teacher"), modernbert_tokenizer_dir, max_length=32)


@pytest.fixture(scope="module")
def candidates(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("candidates"), n_queries=10, per_query=12, with_teacher=False)


def _scores(directory):
    table = pq.read_table(directory)
    order = np.argsort(table.column("pair_index").to_numpy())
    return (
        table.column("pair_index").to_numpy()[order],
        table.column("teacher_score").to_numpy()[order],
        table,
    )


def test_local_scores_match_the_engine_and_cover_every_pair_once(tmp_path, teacher_dir, candidates):
    from ettin_rerank.inference.reranker import Reranker

    out = score_teacher(candidates, teacher_dir, tmp_path / "scored", shard_size=50, batch_pairs=16)
    index, scores, table = _scores(out)
    assert index.tolist() == list(range(120))
    source = pq.read_table(candidates)
    expected = Reranker.from_pretrained(teacher_dir).predict(
        list(zip(source.column("query").to_pylist(), source.column("document").to_pylist(), strict=True))
    )
    # Different batch composition than one predict() call: fp32 rounding, amplified by the calibrated head.
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-3)
    assert scores.std() > 1.0  # a calibrated teacher, not a constant
    assert set(table.column("teacher").to_pylist()) == {str(teacher_dir)}
    assert set(PROVENANCE_COLUMNS) <= set(table.column_names)
    assert sorted(p.name for p in out.glob("part-*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path, teacher_dir, modernbert_tokenizer_dir):
    candidates = write_pairs(
        tmp_path / "cand", n_queries=30, per_query=20, seed=3, with_teacher=False
    )  # 600 pairs
    args = [
        "score-teacher",
        str(candidates),
        "--teacher",
        str(teacher_dir),
        "--shard-size",
        "20",
        "--batch-pairs",
        "20",
    ]
    cli(*args, "-o", str(tmp_path / "full"))

    resumed = tmp_path / "resumed"
    kill_when([*args, "-o", str(resumed)], lambda: shard_path(resumed, 0).is_file())
    written = len(list(resumed.glob("part-*.parquet")))
    assert 1 <= written < 30, f"{written} of 30 shards before the kill: the kill did not interrupt the run"
    cli(*args, "-o", str(resumed))

    full_index, full_scores, _ = _scores(tmp_path / "full")
    index, scores, _ = _scores(resumed)
    assert index.tolist() == list(range(600))  # every pair exactly once
    np.testing.assert_array_equal(scores, full_scores)


def test_resume_with_other_settings_is_refused(tmp_path, teacher_dir, candidates):
    score_teacher(candidates, teacher_dir, tmp_path / "scored", shard_size=60)
    with pytest.raises(ValueError, match="other settings"):
        score_teacher(candidates, teacher_dir, tmp_path / "scored", shard_size=40)


def test_ray_backend_equals_local_backend(tmp_path, teacher_dir, candidates):
    ray = pytest.importorskip("ray")
    local = score_teacher(candidates, teacher_dir, tmp_path / "local", shard_size=50, batch_pairs=16)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        distributed = score_teacher(
            candidates, teacher_dir, tmp_path / "ray", backend="ray", workers=2, shard_size=50, batch_pairs=16
        )
    finally:
        ray.shutdown()
    local_index, local_scores, local_table = _scores(local)
    ray_index, ray_scores, ray_table = _scores(distributed)
    assert ray_index.tolist() == local_index.tolist() == list(range(120))
    np.testing.assert_allclose(ray_scores, local_scores, rtol=1e-4, atol=1e-3)
    assert ray_table.column("doc_id").to_pylist() == local_table.column("doc_id").to_pylist()


def test_unloadable_teacher_fails_before_scoring(tmp_path, candidates):
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="cannot load teacher"):
        score_teacher(candidates, bad, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.parquet"))
    result = cli(
        "score-teacher",
        str(candidates),
        "--teacher",
        str(tmp_path / "missing"),
        "-o",
        str(tmp_path / "o2"),
        check=False,
    )
    assert result.returncode == 2 and "cannot load teacher" in result.stderr


def test_candidates_with_missing_columns_fail_before_loading_the_teacher(tmp_path):
    (tmp_path / "cand").mkdir()
    pq.write_table(
        pa.table({"query_id": ["q1"], "query": ["a"], "doc_id": ["d1"]}),
        tmp_path / "cand" / "part-00000.parquet",
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['document'\]"):
        score_teacher(tmp_path / "cand", tmp_path / "no-such-teacher", tmp_path / "out")


def test_engine_teacher_is_the_reranker_and_batch_tokens_keeps_its_scores(teacher_dir, candidates):
    from ettin_rerank.inference.reranker import Reranker
    from ettin_rerank.scoring import PairScorer
    from ettin_rerank.training.teacher import load_teacher

    source = pq.read_table(candidates).slice(0, 40)
    pairs = list(zip(source.column("query").to_pylist(), source.column("document").to_pylist(), strict=True))
    engine, budgeted = load_teacher(teacher_dir), load_teacher(teacher_dir, batch_tokens=64)
    assert isinstance(engine, Reranker) and isinstance(budgeted, PairScorer)
    assert engine.name == budgeted.name == str(teacher_dir)  # the provenance column
    # Smaller forwards, same pairs: only fp32 rounding differs.
    np.testing.assert_allclose(budgeted.score_pairs(pairs), engine.score_pairs(pairs), rtol=1e-4, atol=1e-3)
