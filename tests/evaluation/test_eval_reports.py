from __future__ import annotations

import json

from ettin_rerank.evaluation import EvaluationReport, render_markdown, write_report


def make_report(reranked=True) -> EvaluationReport:
    first = {"ndcg@10": 0.5, "mrr@10": 0.45, "map@100": 0.4, "recall@10": 0.7, "recall@100": 0.9}
    return EvaluationReport(
        dataset={"name": "toy", "split": "test"},
        settings={"first_stage": "bm25", "top_k": 100, "reranker": "m" if reranked else None},
        first_stage=first,
        reranked={k: v + 0.05 for k, v in first.items()} if reranked else None,
        timings={"index_s": 1.0, "retrieve_s": 0.5},
        counts={"queries_evaluated": 3},
    )


def test_write_report_json_markdown_png(tmp_path):
    paths = write_report(make_report(), tmp_path / "sub" / "results.json")
    data = json.loads(paths["json"].read_text())
    assert data["first_stage"]["ndcg@10"] == 0.5 and data["reranked"]["ndcg@10"] == 0.55
    assert data["settings"]["first_stage"] == "bm25"
    markdown = paths["markdown"].read_text()
    assert paths["markdown"].name == "results.md"
    assert "| ndcg@10 | 0.5000 | 0.5500 | +0.0500 |" in markdown
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["png"].stat().st_size > 5000


def test_first_stage_only_markdown(tmp_path):
    markdown = render_markdown(make_report(reranked=False))
    assert "| metric | first stage |\n" in markdown and "| ndcg@10 | 0.5000 |\n" in markdown
    assert "reranked |" not in markdown
    paths = write_report(make_report(reranked=False), tmp_path / "r.json")
    assert json.loads(paths["json"].read_text())["reranked"] is None
    assert paths["png"].is_file()
