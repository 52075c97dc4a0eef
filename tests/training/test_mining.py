"""`mine`: first-stage candidates bounded by the corpus, judged positives always present, early errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from ettin_rerank.training.mining import mine_candidates

from .conftest import cli

DOCS = {
    f"d{i}": f"document {i} about {w}"
    for i, w in enumerate(["cats purr", "dogs bark", "plants glucose", "lava", "chess", "bread"])
}


def _beir(root, qrels_lines):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items())
    )
    queries = {"q1": "why do cats purr", "q2": "zebra"}  # q2 matches nothing lexically
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(qrels_lines))
    return root


def test_depth_is_bounded_by_the_corpus_and_missed_positives_are_added(tmp_path):
    data = _beir(tmp_path / "data", ["q1\td0\t1\n", "q2\td5\t2\n"])
    out = mine_candidates(data, tmp_path / "cand", split="train", depth=2048, show_progress=False)
    table = pq.read_table(out)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["settings"]["depth"] == len(DOCS) and manifest["complete"]
    q2 = table.filter(
        pq.read_table(out).column("query_id").to_numpy(zero_copy_only=False) == "q2"
    ).to_pylist()
    assert [(r["doc_id"], r["label"], r["first_stage_rank"]) for r in q2] == [
        ("d5", 2, -1)
    ]  # BM25 found nothing
    q1 = [r for r in table.to_pylist() if r["query_id"] == "q1"]
    assert q1[0]["doc_id"] == "d0" and q1[0]["first_stage_rank"] == 1 and q1[0]["label"] == 1
    assert {r["split"] for r in table.to_pylist()} == {"train"} and {
        r["dataset"] for r in table.to_pylist()
    } == {"data"}


def test_empty_split_fails_before_any_work(tmp_path):
    data = _beir(tmp_path / "data", [])
    with pytest.raises(ValueError, match="no usable judgements"):
        mine_candidates(data, tmp_path / "cand", split="train", show_progress=False)
    result = cli("mine", str(data), "--split", "dev", "-o", str(tmp_path / "c2"), check=False)
    assert result.returncode == 2 and "no relevance judgements for this split" in result.stderr
    assert not (tmp_path / "cand").exists() and not (tmp_path / "c2").exists()
