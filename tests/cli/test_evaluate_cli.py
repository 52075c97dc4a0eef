"""`ettin-rerank evaluate | index | search`, run in process through the real CLI entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ettin_rerank.cli import main

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_beir(directory: Path) -> Path:
    (directory / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Cats", "Cats purr when content."),
        "d2": ("Dogs", "Dogs bark at strangers."),
        "d3": ("", "Plants make glucose from sunlight."),
        "d4": ("Lava", "Volcanoes erupt lava."),
    }
    (directory / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items())
    )
    queries = {"q1": "why do cats purr", "q2": "glucose from sunlight", "q3": "dogs", "q4": "volcano"}
    (directory / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (directory / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td2\t1\nq4\td4\t0\n"
    )
    return directory


def test_evaluate_no_rerank_writes_json_markdown_png(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    output = tmp_path / "out" / "results.json"
    assert main(["evaluate", str(dataset), "--no-rerank", "--output", str(output)]) == 0
    data = json.loads(output.read_text())
    assert data["reranked"] is None
    assert data["first_stage"]["recall@100"] == 1.0
    assert data["settings"]["first_stage"] == "bm25" and data["settings"]["top_k"] == 100
    assert data["counts"]["queries_evaluated"] == 3 and data["counts"]["queries_skipped_no_relevant"] == 1
    assert "index_s" in data["timings"]
    assert output.with_suffix(".md").is_file() and output.with_suffix(".png").is_file()
    assert "| ndcg@10 |" in capsys.readouterr().out


def test_evaluate_without_any_model_falls_back_to_first_stage(tmp_path, capsys, monkeypatch):
    from ettin_rerank import models

    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.setattr(models, "BUNDLED_MODEL_DIR", tmp_path / "no-bundled-model")
    dataset = write_beir(tmp_path / "ds")
    assert main(["evaluate", str(dataset), "-o", str(tmp_path / "r.json")]) == 0
    assert "evaluating the first stage only" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["reranked"] is None


def test_evaluate_missing_split_is_a_clear_error(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    assert (
        main(["evaluate", str(dataset), "--no-rerank", "--split", "dev", "-o", str(tmp_path / "r.json")]) == 2
    )
    err = capsys.readouterr().err
    assert "no relevance judgements for this split" in err and "splits available: test" in err
    assert not (tmp_path / "r.json").exists()


def test_evaluate_empty_corpus_is_a_clear_error(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    (dataset / "corpus.jsonl").write_text("")
    assert main(["evaluate", str(dataset), "--no-rerank", "-o", str(tmp_path / "r.json")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_evaluate_rejects_bad_top_k(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    assert (
        main(["evaluate", str(dataset), "--no-rerank", "--top-k", "0", "-o", str(tmp_path / "r.json")]) == 2
    )
    assert "--top-k must be at least 1" in capsys.readouterr().err


def test_index_and_search_text_directory(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kettle.txt").write_text("Descale the kettle with white vinegar once a month.")
    (docs / "garden.md").write_text("# Garden\nWater tomatoes early in the morning, never at noon.")
    (docs / "bike.txt").write_text("Pump bicycle tyres to the pressure on the sidewall.")
    index_dir = tmp_path / "idx"
    assert main(["index", str(docs), "-o", str(index_dir)]) == 0
    assert "indexed 3 documents" in capsys.readouterr().out

    assert main(["search", str(index_dir), "how do I descale a kettle", "-n", "2", "--no-rerank"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("  1. kettle.txt  (bm25 score ")
    assert "Descale the kettle with white vinegar" in out

    assert main(["search", str(index_dir), "tomatoes", "--json", "--no-rerank"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["reranked"] is False
    assert [r["doc_id"] for r in payload["results"]] == ["garden.md"]
    assert payload["results"][0]["title"] == "Garden"

    assert main(["search", str(tmp_path / "nowhere"), "x"]) == 2
    assert "does not exist" in capsys.readouterr().err

    # A folder of documents searches directly (BM25 built in memory).
    assert main(["search", str(docs), "how do I descale a kettle", "-n", "1", "--no-rerank"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("  1. kettle.txt  (bm25 score ")


def test_search_with_a_random_tiny_reranker(tmp_path, capsys, modernbert_tokenizer_dir):
    tokenizer_dir = modernbert_tokenizer_dir
    from ettin_rerank.family import create_random_reranker

    model_dir = create_random_reranker("tiny", tokenizer_dir, tmp_path / "tiny", seed=0)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"n{i}.txt").write_text(f"note {i} about tea and biscuits " + "word " * i)
    assert main(["index", str(docs), "-o", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx"), "tea", "--model", str(model_dir), "--json", "-n", "3"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["reranked"] is True
    scores = [r["score"] for r in payload["results"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert {r["first_stage_rank"] for r in payload["results"]} <= set(range(1, 6))

    assert main(["search", str(tmp_path / "idx"), "tea", "--model", str(model_dir), "-n", "1"]) == 0
    heading = capsys.readouterr().out.splitlines()[0]
    assert "(rerank score " in heading and "; bm25 #" in heading


def test_evaluate_random_tiny_reranker_on_nano_scifact(
    tmp_path, capsys, scifact_dir, modernbert_tokenizer_dir
):
    scifact, tokenizer_dir = scifact_dir, modernbert_tokenizer_dir
    from ettin_rerank.family import create_random_reranker

    model_dir = create_random_reranker("tiny", tokenizer_dir, tmp_path / "tiny", seed=0)
    output = tmp_path / "results.json"
    argv = ["evaluate", str(scifact), "--model", str(model_dir), "--nano", "3", "--nano-max-corpus", "60"]
    assert main([*argv, "--top-k", "5", "--max-length", "128", "-o", str(output)]) == 0
    data = json.loads(output.read_text())
    assert data["settings"]["reranker"] == str(model_dir) and data["settings"]["nano"] == 3
    compute = data["settings"]["reranker_compute"]  # the figures' mode: auto may pick bf16 on a CPU
    assert compute["device"] == "cpu" and compute["dtype"] in ("float32", "bfloat16")
    assert compute["quantize"] is None and compute["max_length"] == 128
    assert data["counts"]["documents"] == 60 and data["counts"]["queries_evaluated"] == 3
    assert set(data["reranked"]) == set(data["first_stage"])
    assert data["timings"]["rerank_s"] > 0
    markdown = output.with_suffix(".md").read_text()
    assert "| metric | first stage | reranked | change |" in markdown
    assert f"Reranker computed in {compute['dtype']} on cpu, 128 tokens per pair" in markdown


def test_evaluate_reranks_a_trec_run_with_trec_qrels_and_saves_the_run(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    run_file = tmp_path / "first.trec"
    run_file.write_text(
        "q1 Q0 d2 1 5.0 bm25\nq1 Q0 d1 2 4.0 bm25\nq2 Q0 d3 1 2.0 bm25\nq3 Q0 d2 1 1.0 bm25\n"
    )
    qrels_file = tmp_path / "qrels.txt"
    qrels_file.write_text("q1 0 d1 2\nq2 0 d3 1\nq3 0 d2 1\n")
    output, saved = tmp_path / "r.json", tmp_path / "out.trec"
    argv = ["evaluate", str(dataset), "--first-stage", f"run:{run_file}", "--qrels", str(qrels_file)]
    assert main([*argv, "--no-rerank", "--save-run", str(saved), "-o", str(output)]) == 0
    data = json.loads(output.read_text())
    assert data["settings"]["first_stage"] == f"run:{run_file}" and data["settings"]["qrels"] == str(
        qrels_file
    )
    assert data["dataset"]["split"] == "qrels" and data["counts"]["queries_evaluated"] == 3
    assert data["first_stage"]["mrr@10"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert data["runs"] == {"first_stage": str(saved)}
    assert saved.read_text().splitlines()[0] == "q1 Q0 d2 1 5.0 run"
    out = capsys.readouterr().out
    assert f"Qrels: {qrels_file}" in out and str(saved) in out.splitlines()[-1]


def test_evaluate_first_stage_specs_fail_at_the_command_line(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    for spec, message in [
        ("splade", "unknown first stage 'splade'; choose one of bm25, dense, hybrid, run:FILE"),
        ("run", "the first stage 'run' needs FILE: run:FILE"),
        ("bm25:k1=2", "the first stage 'bm25' takes no argument"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", str(dataset), "--no-rerank", "--first-stage", spec])
        assert exit_info.value.code == 2
        assert f"argument --first-stage: {message}" in capsys.readouterr().err


def test_evaluate_bad_run_or_qrels_line_names_file_and_line(tmp_path, capsys):
    dataset = write_beir(tmp_path / "ds")
    run_file = tmp_path / "bad.trec"
    run_file.write_text("q1 Q0 d1 1 2.0 bm25\nq1 Q0 d2 two 1.0 bm25\n")
    argv = ["evaluate", str(dataset), "--no-rerank", "-o", str(tmp_path / "r.json")]
    assert main([*argv, "--first-stage", f"run:{run_file}"]) == 2
    assert f"error: {run_file}:2: rank 'two' is not an integer" in capsys.readouterr().err
    qrels_file = tmp_path / "bad.qrels"
    qrels_file.write_text("q1 0 d1 1\nq2 d3 1\n")
    assert main([*argv, "--qrels", str(qrels_file)]) == 2
    assert f"error: {qrels_file}:2: expected 4 whitespace-separated fields" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_evaluate_keep_identical_ids(tmp_path):
    dataset = write_beir(tmp_path / "ds")
    # A corpus document shares query q3's id and text, as in ArguAna: BM25 finds it first.
    with (dataset / "corpus.jsonl").open("a") as handle:
        handle.write(json.dumps({"_id": "q3", "title": "Dogs", "text": "dogs"}) + "\n")
    results = {}
    for flags in ([], ["--keep-identical-ids"]):
        output = tmp_path / f"r{len(flags)}.json"
        assert main(["evaluate", str(dataset), "--no-rerank", *flags, "-o", str(output)]) == 0
        results[len(flags)] = json.loads(output.read_text())
    assert results[0]["counts"]["identical_ids_dropped"] == 1
    assert results[0]["first_stage"]["mrr@10"] == 1.0
    assert results[1]["counts"]["identical_ids_dropped"] == 0
    assert results[1]["first_stage"]["mrr@10"] == pytest.approx((1 + 1 + 1 / 2) / 3)


def test_index_offers_only_the_stages_that_index_a_corpus(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("a note")
    with pytest.raises(SystemExit):
        main(["index", str(docs), "-o", str(tmp_path / "idx"), "--first-stage", "run:x.trec"])
    err = capsys.readouterr().err
    assert "invalid choice: 'run:x.trec'" in err and "{bm25,dense,hybrid}" in err


def test_evaluate_dl19_official_bm25_run(tmp_path, dl19_dir):
    dl19 = dl19_dir
    output = tmp_path / "dl19.json"
    argv = ["evaluate", str(dl19), "--first-stage", f"run:{dl19 / 'bm25_top100.trec'}"]
    argv += ["--qrels", str(dl19 / "qrels" / "test_full.trec"), "--no-rerank", "-o", str(output)]
    assert main(argv) == 0
    assert round(json.loads(output.read_text())["first_stage"]["ndcg@10"], 4) == 0.5058
