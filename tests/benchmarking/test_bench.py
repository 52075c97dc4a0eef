"""`ettin-rerank bench` end to end on a tiny model and a tiny workload (a smoke test, not a speed test)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ettin_rerank.benchmarking.measure import EncoderShape, useful_flops
from ettin_rerank.benchmarking.workloads import long_pairs


def test_bench_command_writes_json_and_chart(tiny_reranker_dir, scifact_dir, tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    from ettin_rerank.cli import main

    out = tmp_path / "bench.json"
    code = main(
        [
            "bench", "--model", str(tiny_reranker_dir), "--data", str(scifact_dir),
            "--engines", "ours-exact,ours-int8,st-default", "--num-queries", "1", "--docs-per-query", "6",
            "--repeats", "1", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    engines = report["engines"]
    assert set(engines) == {"ours-exact", "ours-int8", "st-default"}
    assert engines["st-default"]["ratio_vs_st-default"] == pytest.approx(1.0)
    assert engines["ours-exact"]["paired_ratio_vs_ours-exact"] == pytest.approx(1.0)
    assert engines["ours-exact"]["deviation"]["max_abs_diff"] <= 1e-4
    assert all(
        e["pairs_per_s"] > 0 and e["gflops_per_s"] > 0 and e["peak_memory_mb"] > 0 for e in engines.values()
    )
    assert report["matmul_peak_gflops_fp32"] > 0
    assert "ours-exact" in capsys.readouterr().out


def test_paired_ratio_pairs_each_repeat_with_the_baselines_same_repeat():
    from ettin_rerank.benchmarking.runner import paired_ratio

    # the host slowed down 3x in the second repeat: both engines felt it, the ratio did not
    assert paired_ratio([2.0, 6.0, 2.0], [1.0, 3.0, 1.0]) == pytest.approx(2.0)
    assert paired_ratio([2.0, 6.0, 2.2], [1.0, 3.0, 2.2]) == pytest.approx(2.0)  # median of 2, 2, 1
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])


def test_long_workload_documents_fall_in_the_token_range(scifact_dir, modernbert_tokenizer_dir):
    from ettin_rerank.inference.tokenization import PairTokenizer

    tokenizer = PairTokenizer.from_dir(modernbert_tokenizer_dir, 7999, with_token_type_ids=False)
    pairs = long_pairs(scifact_dir, tokenizer, num_docs=3, min_tokens=500, max_tokens=900)
    counts = tokenizer.count_tokens([d for _, d in pairs])
    assert len(pairs) == 3 and np.all(counts >= 500) and np.all(counts <= 900 + 1500)


def test_useful_flops_honours_windows():
    shape = EncoderShape(num_layers=3, hidden=64, intermediate=96, global_layers=1, window=128)
    short, long = useful_flops(shape, np.array([100])), useful_flops(shape, np.array([1000]))
    linear_per_token = 2 * (4 * 64 * 64 + 3 * 96 * 64) * 3
    assert long == pytest.approx(linear_per_token * 1000 + 4 * 64 * 1000**2 + 2 * 4 * 64 * 1000 * 129)
    assert short < long


PEAK_MEMORY_CHECK = """
import numpy as np
from ettin_rerank.benchmarking.measure import PeakMemory

with PeakMemory() as memory:
    block = np.ones(64 * 2**20 // 8)
    block.sum()
assert memory.peak_rss - memory.start_rss >= 32 * 2**20, (memory.start_rss, memory.peak_rss)
"""


def test_peak_memory_sees_an_allocation():
    # In a fresh process: after a long test session the allocator may serve 64 MiB from pages that are
    # already resident, and the peak would not move although the measurement is right.
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_CHECK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_our_engines_are_pair_scorers_that_describe_their_mode(tiny_reranker_dir):
    from ettin_rerank.benchmarking.engines import load_engine
    from ettin_rerank.scoring import PairScorer

    engine = load_engine("ours-int8", str(tiny_reranker_dir), batch_tokens=64)
    assert isinstance(engine, PairScorer) and engine.name == "ours-int8"
    assert engine.description.startswith("ettin-rerank int8, attention ")
    assert engine.description.endswith(engine.reranker.attention)
    pairs = [("a query", "a document"), ("another query", "a longer document " * 8)]
    scores = engine.score_pairs(pairs)
    assert scores.dtype == np.float32 and scores.shape == (2,)
    np.testing.assert_array_equal(scores, engine.reranker.predict(pairs, batch_tokens=64))


def test_onnx_engines_say_why_they_cannot_run_instead_of_failing(tiny_reranker_dir, tmp_path):
    from ettin_rerank.benchmarking.engines import ONNX_MODES, OPENVINO_MODES, EngineUnavailable, load_engine

    for name in (*ONNX_MODES, *OPENVINO_MODES):
        with pytest.raises(EngineUnavailable, match="CPU engine"):
            load_engine(name, str(tiny_reranker_dir), device="cuda", workdir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before exporting anything


def test_table_prints_the_cpu_kernels_and_the_engines_not_measured():
    from ettin_rerank.benchmarking.runner import format_table

    report = {
        "workload": {"name": "beir-short", "pairs": 3, "mean_tokens": 10.0},
        "matmul_peak_gflops_fp32": 10.0,
        "machine": {
            "cpu": "Some CPU",
            "cpu_kernels": {"flags": ["avx2", "fma"], "native_bf16": False, "native_int8": False},
        },
        "engines": {},
        "unavailable": {"st-onnx": "CrossEncoder(backend='onnx') cannot load m: ImportError: no optimum"},
    }
    table = format_table(report)
    assert "kernels: avx2 fma (no native bf16, no int8 dot product)" in table
    assert "st-onnx        not measured: CrossEncoder(backend='onnx') cannot load m: ImportError" in table


@pytest.mark.slow  # exports the model to ONNX and compiles it for OpenVINO (~40 s of CPU)
def test_bench_runs_our_onnx_export_on_onnxruntime_and_openvino(tiny_reranker_dir, scifact_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    pytest.importorskip("sentence_transformers")
    from ettin_rerank.benchmarking.runner import BenchConfig, format_table, run_bench

    report = run_bench(
        BenchConfig(
            str(tiny_reranker_dir),
            str(scifact_dir),
            engines=["ours-exact", "onnx-ours", "openvino", "st-default", "st-onnx"],
            num_queries=1,
            docs_per_query=6,
            repeats=1,
            workdir=str(tmp_path),
        )
    )
    engines = report["engines"]
    for name in ("onnx-ours", "openvino"):
        assert engines[name]["deviation"]["max_abs_diff"] <= 1e-4  # same fp32 graph, same pairs
        assert engines[name]["pairs_per_s"] > 0
    # sentence-transformers' onnx backend needs optimum: measured where it loads, else the reason is kept
    assert "st-onnx" in engines or "cannot load" in report["unavailable"]["st-onnx"]
    assert report["machine"]["cpu_kernels"]["flags"]
    assert "onnx-ours" in format_table(report)


def test_ours_auto_runs_what_auto_picks_and_the_table_names_the_probe(tiny_reranker_dir):
    from ettin_rerank.benchmarking.engines import load_engine
    from ettin_rerank.benchmarking.runner import _machine, format_table
    from ettin_rerank.inference.modes import auto_dtype

    engine = load_engine("ours-auto", str(tiny_reranker_dir), batch_tokens=64)
    assert engine.reranker.dtype == auto_dtype("cpu")
    assert engine.description.startswith(f"ettin-rerank {str(auto_dtype('cpu')).removeprefix('torch.')}, ")
    machine = _machine("cpu")
    assert machine["dtype_auto"]["dtype"] == str(auto_dtype("cpu")).removeprefix("torch.")
    report = {
        "workload": {"name": "beir-short", "pairs": 3, "mean_tokens": 10.0},
        "matmul_peak_gflops_fp32": 10.0,
        "machine": machine,
        "engines": {},
    }
    assert f"dtype auto: {machine['dtype_auto']['dtype']} (" in format_table(report)


@pytest.mark.slow  # exports the model to ONNX and compiles it twice for OpenVINO (~30 s of CPU)
def test_openvino_rows_run_the_precision_they_name(tiny_reranker_dir, tmp_path):
    openvino = pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from ettin_rerank.benchmarking.engines import EngineUnavailable, load_engine
    from tolerances import BF16_TOL

    pairs = [("a query", "a document"), ("another query", "a longer document " * 8)]
    reference = load_engine("ours-exact", str(tiny_reranker_dir)).score_pairs(pairs)
    fp32 = load_engine("openvino", str(tiny_reranker_dir), workdir=tmp_path, threads=1)
    assert fp32.scorer.session.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
    np.testing.assert_allclose(fp32.score_pairs(pairs), reference, atol=1e-4)
    if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        bf16 = load_engine("openvino-bf16", str(tiny_reranker_dir), workdir=tmp_path, threads=1)
        assert bf16.scorer.session.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.bf16
        assert "bf16" in bf16.description
        scores = bf16.score_pairs(pairs)
        np.testing.assert_allclose(scores, reference, atol=BF16_TOL)
        assert not np.array_equal(scores, fp32.score_pairs(pairs))  # really another precision
    else:  # no bf16 kernels: said so, never a second f32 row under a bf16 name
        with pytest.raises(EngineUnavailable, match="no bf16 on this CPU"):
            load_engine("openvino-bf16", str(tiny_reranker_dir), workdir=tmp_path, threads=1)


def test_the_timed_passes_show_a_bar_when_asked(capsys):
    from ettin_rerank.benchmarking.runner import _time_engines

    class Counting:
        def __init__(self):
            self.calls = 0

        def score_pairs(self, pairs):
            self.calls += 1
            return np.zeros(len(pairs), dtype=np.float32)

    engines = {"a": Counting(), "b": Counting()}
    measured = _time_engines(engines, [("q", "d")] * 3, repeats=2, show_progress=True)  # type: ignore[arg-type]
    assert [engine.calls for engine in engines.values()] == [2, 2]
    assert {name: len(seconds) for name, seconds in measured.seconds.items()} == {"a": 2, "b": 2}
    bar = capsys.readouterr().err
    assert "timing" in bar and "4/4" in bar and "repeat 2 of 2" in bar
    _time_engines(engines, [("q", "d")], repeats=1)
    assert capsys.readouterr().err == ""
