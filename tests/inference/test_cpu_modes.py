"""CPU kernel detection and the precision it decides: `dtype="auto"` by a cached bf16 probe, bf16
falling back to exact fp32 where the CPU has no native bf16, and int8 with per-channel weight scales."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from ettin_rerank.inference import cpu_probe, modes
from ettin_rerank.inference.cpu import (
    KERNEL_FLAGS,
    CpuKernels,
    cpu_kernels,
    parse_cpuinfo_flags,
    parse_cpuinfo_model_name,
)
from ettin_rerank.inference.cpu_probe import (
    BF16_MIN_SPEEDUP,
    Bf16Probe,
    bf16_pays,
    bf16_probe,
    probe_identity,
    write_cached,
)
from ettin_rerank.inference.int8 import INT8_LINEARS, OneDnnInt8Linear
from ettin_rerank.inference.modes import resolve_dtype, resolve_modes
from tolerances import BF16_TOL, INT8_TINY_TOL

AVX2_EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx fma avx2 bmi2\nbugs\t\t: sysret_ss_attrs\n"
SAPPHIRE_RAPIDS = (
    "flags\t\t: avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    "flags\t\t: only the first processor's line is read\n"
)
NATIVE_BF16 = CpuKernels(("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"), "AVX512", "test")
AVX2_ONLY = CpuKernels(("avx2", "fma"), "AVX2", "test")
PAIRS = [("what is ettin?", "a giant of norse myth " * 20), ("packed attention", "no padding at all")] * 5


def test_this_cpu_is_described_by_a_typed_result():
    kernels = cpu_kernels()
    assert isinstance(kernels, CpuKernels)
    assert set(kernels.flags) <= set(KERNEL_FLAGS)
    assert kernels.torch_capability == torch.backends.cpu.get_cpu_capability()
    assert kernels.native_bf16 == any(f in kernels.flags for f in ("avx512_bf16", "amx_bf16"))
    described = kernels.describe()
    assert described["flags"] == list(kernels.flags)
    assert modes.cpu_auto_probe().describe()["dtype"] in ("float32", "bfloat16")


def test_cpuinfo_flags_decide_the_native_kernels():
    epyc = CpuKernels(parse_cpuinfo_flags(AVX2_EPYC), "AVX2", "test")
    assert epyc.flags == ("avx2", "fma")
    assert not epyc.native_bf16 and not epyc.native_int8
    assert bf16_probe(epyc).dtype == torch.float32  # no native bf16: exact, without probing
    assert parse_cpuinfo_model_name(AVX2_EPYC) == "AMD EPYC 7B13"
    assert epyc.missing(("avx512_bf16", "amx_bf16")) == "avx512_bf16 or amx_bf16"
    spr = CpuKernels(parse_cpuinfo_flags(SAPPHIRE_RAPIDS), "AVX512", "test")
    assert spr.flags == ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    assert spr.native_bf16 and spr.native_int8  # a bf16 candidate: the probe decides (below)
    assert parse_cpuinfo_flags("Features\t: fp asimd bf16\n") == ()  # no x86 flags line: nothing claimed


def measured(speedup: float) -> Bf16Probe:
    return Bf16Probe(speedup, 100.0, 100.0 * speedup, torch.get_num_threads(), "measured")


@pytest.mark.parametrize(
    ("kernels", "speedup", "want"),
    [
        (NATIVE_BF16, 1.6, torch.bfloat16),  # native bf16, measured clearly faster: bf16
        (NATIVE_BF16, 0.66, torch.float32),  # native bf16 but slower (the Xeon): exact
        (AVX2_ONLY, None, torch.float32),  # no native bf16: exact, never probed
    ],
)
def test_auto_follows_the_rule(monkeypatch, probe_cache, kernels, speedup, want):
    path, calls = probe_cache
    monkeypatch.setattr(modes, "cpu_kernels", lambda: kernels)
    if speedup is not None:  # what the probe found on this (stand-in) CPU, as its cache holds it
        write_cached(path, probe_identity(kernels), measured(speedup))
    assert resolve_dtype("auto", "cpu") == want
    assert resolve_dtype("auto", "cpu", quantize="int8") == torch.float32  # int8 takes fp32 activations
    assert resolve_dtype("float32", "cpu") == torch.float32  # the library default stays exact
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("auto", "meta") == torch.float32  # any other device: exact
    assert calls == []  # read from the cache, or (no native bf16) never probed


def test_auto_on_this_machine_runs_fp32_or_bf16_within_the_bf16_bound(tiny_reranker_dir, random_word_pairs):
    """Whatever this CPU is, dtype="auto" runs exact fp32 or bf16, says which, and scores within the
    bf16 bound of exact fp32 (docs/speed.md); where it picks fp32 the scores are exact."""
    auto = Reranker.from_pretrained(tiny_reranker_dir, dtype="auto")
    assert auto.dtype in (torch.float32, torch.bfloat16)
    assert auto.model.encoder_dtype == auto.dtype and f"dtype={auto.dtype}" in repr(auto)
    scores = auto.predict(random_word_pairs)
    assert scores.dtype == np.float32
    exact = Reranker.from_pretrained(tiny_reranker_dir).predict(random_word_pairs)
    if auto.dtype == torch.float32:
        np.testing.assert_array_equal(scores, exact)
    assert np.abs(scores - exact).max() <= BF16_TOL


def test_the_decision_rule_takes_bf16_only_from_a_clear_margin():
    assert BF16_MIN_SPEEDUP > 1.0  # never a mode slower than exact
    assert not bf16_pays(0.66) and not bf16_pays(1.0) and not bf16_pays(BF16_MIN_SPEEDUP - 0.01)
    assert bf16_pays(BF16_MIN_SPEEDUP) and bf16_pays(2.0)
    assert measured(0.66).dtype == torch.float32 and measured(1.6).dtype == torch.bfloat16
    assert Bf16Probe(None, None, None, 1, "not probed").dtype == torch.float32


@pytest.fixture
def probe_cache(tmp_path, monkeypatch):
    """A fresh cache folder for one test, and a count of the probe's measurements."""
    monkeypatch.setenv("ETTIN_RERANK_CACHE_DIR", str(tmp_path))
    calls = []
    measure = cpu_probe.measure_bf16

    def counted() -> Bf16Probe:
        calls.append(1)
        return measure()

    monkeypatch.setattr(cpu_probe, "measure_bf16", counted)
    return tmp_path / cpu_probe.CACHE_FILE, calls


def test_the_probe_measures_quickly_caches_and_reads_its_cache(probe_cache):
    """The real probe (on this CPU's own kernels, with native bf16 flags claimed so that it runs on
    any machine) is small, is cached, and is read back without measuring."""
    path, calls = probe_cache
    # small by construction: its arithmetic, both dtypes and every round, is under half a second of a
    # 2-core CPU's fp32 peak (~110 GFLOP/s); a wall-clock bound fails on a loaded machine
    rounds = cpu_probe.PROBE_REPEATS + 1  # the warm-up round too
    assert 2 * rounds * cpu_probe._probe_flops() <= 50e9
    kernels = CpuKernels(("avx2", "fma", "avx512f", "avx512_bf16"), "AVX512", "test", "a test CPU")
    first = bf16_probe(kernels)
    assert first.source == "measured" and calls == [1]
    assert first.speedup is not None and first.speedup > 0 and first.threads == torch.get_num_threads()
    assert first.dtype == (torch.bfloat16 if bf16_pays(first.speedup) else torch.float32)
    cached = json.loads(path.read_text())
    assert cached["entries"][0]["identity"] == probe_identity(kernels)
    assert cached["entries"][0]["identity"]["cpu"] == "a test CPU"
    written = path.stat().st_mtime_ns
    second = bf16_probe(kernels)
    assert second.source == "cache" and calls == [1]  # not measured again
    assert second.speedup == first.speedup and second.dtype == first.dtype
    assert path.stat().st_mtime_ns == written


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"format": 1, "entries": "oops"}',
        '{"format": 99, "entries": []}',
        '{"format": 1, "entries": [{"identity": [], "result": {}}]}',
        "[]",
    ],
)
def test_a_corrupt_or_foreign_cache_is_measured_again(probe_cache, content):
    path, calls = probe_cache
    kernels = CpuKernels(("avx512f", "avx512_bf16"), "AVX512", "test", "a test CPU")
    path.write_text(content)
    assert bf16_probe(kernels).source == "measured" and calls == [1]
    assert bf16_probe(kernels).source == "cache" and calls == [1]  # the rewritten file is good


def test_another_cpu_or_version_is_measured_again(probe_cache):
    path, calls = probe_cache
    kernels = CpuKernels(("avx512f", "avx512_bf16"), "AVX512", "test", "a test CPU")
    other = CpuKernels(("avx512f", "avx512_bf16"), "AVX512", "test", "another CPU")
    write_cached(path, probe_identity(other), measured(2.0))
    assert bf16_probe(kernels).source == "measured" and calls == [1]
    identities = [entry["identity"] for entry in json.loads(path.read_text())["entries"]]
    assert identities == [probe_identity(kernels)]  # the foreign entry is dropped


def test_a_cpu_without_native_bf16_is_never_probed(probe_cache):
    path, calls = probe_cache
    probe = bf16_probe(AVX2_ONLY)
    assert probe.dtype == torch.float32 and probe.speedup is None and "avx512_bf16" in probe.source
    assert calls == [] and not path.exists()


def test_bf16_runs_bf16_only_on_a_native_bf16_cpu(monkeypatch, caplog):
    monkeypatch.setattr(modes, "cpu_kernels", lambda: NATIVE_BF16)
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(modes, "cpu_kernels", lambda: AVX2_ONLY)
    modes.warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger=modes.__name__):
        assert resolve_dtype("bfloat16", "cpu") == torch.float32
        assert resolve_dtype("bf16", "cpu") == torch.float32
    warnings = [r.getMessage() for r in caplog.records if "bfloat16" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per process
    assert "avx512_bf16 or amx_bf16" in warnings[0] and "float32" in warnings[0]


def test_bf16_on_this_cpu(tiny_reranker_dir, caplog):
    """On a CPU without native bf16 (e.g. AVX2 only), bfloat16 warns and gives exactly the fp32 scores."""
    if cpu_kernels().native_bf16:
        pytest.skip(
            "this CPU has native bf16: bfloat16 runs bf16 here (tests/inference/test_modes.py bounds it)"
        )
    modes.warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger=modes.__name__):
        bf16 = Reranker.from_pretrained(tiny_reranker_dir, dtype="bfloat16")
    assert any("no native bf16 kernels" in r.getMessage() for r in caplog.records)
    assert bf16.dtype == torch.float32 and bf16.model.encoder_dtype == torch.float32
    assert "dtype=torch.float32" in repr(bf16)  # reports the dtype it really runs
    exact = Reranker.from_pretrained(tiny_reranker_dir)
    np.testing.assert_array_equal(bf16.predict(PAIRS), exact.predict(PAIRS))


def test_mode_errors_do_not_depend_on_the_cpu(monkeypatch):
    for kernels in (NATIVE_BF16, AVX2_ONLY):
        monkeypatch.setattr(modes, "cpu_kernels", lambda kernels=kernels: kernels)
        with pytest.raises(ValueError, match="CPU mode with float32"):
            resolve_modes("cpu", "bfloat16", "int8")
        assert resolve_modes("cpu", "auto", "int8") == (torch.device("cpu"), torch.float32, "int8")
    with pytest.raises(ValueError, match="'auto'"):
        resolve_dtype("int4")


def test_int8_has_per_channel_weight_scales_and_stays_within_its_bound(tiny_reranker_dir, random_word_pairs):
    pairs = random_word_pairs
    int8 = Reranker.from_pretrained(tiny_reranker_dir, quantize="int8")
    assert int8.quantize == "int8" and int8.dtype == torch.float32
    quantized = [m for m in int8.model.encoder.modules() if isinstance(m, INT8_LINEARS)]
    assert quantized and not any(type(m) is torch.nn.Linear for m in int8.model.encoder.modules())
    for linear in quantized:  # one scale per output row
        scales = (
            linear.weight_scales
            if isinstance(linear, OneDnnInt8Linear)
            else linear.weight().q_per_channel_scales()
        )
        assert scales.shape == (linear.out_features,)
    exact = Reranker.from_pretrained(tiny_reranker_dir).predict(pairs)
    assert np.abs(int8.predict(pairs) - exact).max() <= INT8_TINY_TOL
