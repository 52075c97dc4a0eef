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


def test_flag_defaults_are_the_library_defaults(monkeypatch):
    """Each default is written once, in the library: parsing no flags rebuilds exactly the defaults."""
    from ettin_rerank.benchmarking.runner import BenchConfig
    from ettin_rerank.cli import bench, build_parser, serve, train
    from ettin_rerank.server.settings import ServerSettings
    from ettin_rerank.training.distill import DistillConfig

    monkeypatch.delenv(serve.API_KEY_ENV, raising=False)
    parse = build_parser().parse_args
    assert serve.settings_from_args(parse(["serve"])) == ServerSettings()
    assert train.distill_config(parse(["distill", "--train", "t", "-o", "out"])) == DistillConfig(
        train="t", output_dir="out"
    )
    assert bench.bench_config(parse(["bench", "--model", "m", "--data", "d"])) == BenchConfig("m", "d")


def test_loading_flags_reach_from_pretrained_and_threads_only_when_asked(monkeypatch):
    from ettin_rerank.cli import build_parser, options
    from ettin_rerank.inference.reranker import Reranker  # what load_reranker imports when it runs
    from ettin_rerank.models import ModelChoice

    calls = []
    monkeypatch.setattr(Reranker, "from_pretrained", lambda name, **kwargs: calls.append((name, kwargs)))
    choice = ModelChoice("some/model", "argument")
    options.load_reranker(choice, build_parser().parse_args(["rank", "-q", "x"]))
    options.load_reranker(
        choice,
        build_parser().parse_args(
            ["rank", "-q", "x", "--threads", "3", "--quantize", "int8", "--batch-tokens", "64"]
        ),
    )
    options.load_reranker(choice)  # `info`: the library's defaults
    assert calls == [
        ("some/model", {"device": "cpu", "dtype": "float32", "max_length": None, "quantize": None, "num_threads": None, "batch_tokens": None}),
        ("some/model", {"device": "cpu", "dtype": "float32", "max_length": None, "quantize": "int8", "num_threads": 3, "batch_tokens": 64}),
        ("some/model", {}),
    ]  # fmt: skip
