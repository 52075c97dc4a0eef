"""`ettin-rerank init`, `rank` and `info` through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ettin_rerank", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, modernbert_tokenizer_dir):
    out = tmp_path_factory.mktemp("cli") / "tiny"
    result = run_cli(
        "init", "--size", "tiny", "--tokenizer", str(modernbert_tokenizer_dir), "--seed", "3", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def test_init_writes_the_modular_layout(model_dir):
    for name in (
        "modules.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "4_Dense/model.safetensors",
    ):
        assert (model_dir / name).is_file(), name


def test_rank_jsonl_and_plain_lines_agree(model_dir, tmp_path):
    documents = ["Ettin is a giant.", "Rerankers sort documents.", "Unrelated text about cooking."]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": d}) for d in documents) + "\n")
    from_file = run_cli("rank", "--model", str(model_dir), "--query", "what is ettin", str(jsonl), "--json")
    from_stdin = run_cli(
        "rank", "--model", str(model_dir), "-q", "what is ettin", "--json", stdin="\n".join(documents)
    )
    assert from_file.returncode == 0, from_file.stderr
    assert from_stdin.returncode == 0, from_stdin.stderr
    a, b = json.loads(from_file.stdout)["results"], json.loads(from_stdin.stdout)["results"]
    assert [r["index"] for r in a] == [r["index"] for r in b]
    assert sorted(r["index"] for r in a) == [0, 1, 2]
    assert all(r["document"] == documents[r["index"]] for r in a)

    from ettin_rerank import Reranker

    expected = Reranker.from_pretrained(model_dir).predict([("what is ettin", d) for d in documents])
    assert [r["score"] for r in a] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)


def test_rank_table_output(model_dir):
    result = run_cli(
        "rank", "--model", str(model_dir), "-q", "giant", "--top-k", "1", stdin="one\ntwo giant\n"
    )
    assert result.returncode == 0, result.stderr
    assert "score" in result.stdout and result.stdout.count("│") >= 4


def test_rank_bad_jsonl_names_the_line(model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 3}\n')
    result = run_cli("rank", "--model", str(model_dir), "-q", "x", str(bad))
    assert result.returncode == 2
    assert "bad.jsonl:2" in result.stderr


def test_info(model_dir):
    result = run_cli("info", str(model_dir), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["layout"] == "sentence-transformers-modular"
    assert info["layers"] == 4 and info["hidden_size"] == 128 and info["max_length"] == 7999
    assert info["parameters"] > 1_000_000


def test_missing_model_is_a_clear_error(tmp_path):
    result = run_cli("info", str(tmp_path / "nope"))
    assert result.returncode == 2 and "does not exist" in result.stderr
