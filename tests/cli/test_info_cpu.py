"""`ettin-rerank info` says which kernels this CPU has, and which commands default to dtype auto."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def info_outputs(tiny_reranker_dir):
    """`info --json` and `info` as the command prints them (run in this process: the console script
    itself is covered by tests/cli/test_core_cli.py)."""
    import contextlib
    import io

    from ettin_rerank.cli import build_parser

    outputs = []
    for flags in (["--json"], []):
        args = build_parser().parse_args(["info", str(tiny_reranker_dir), *flags])
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert args.handler(args) == 0
        outputs.append(out.getvalue())
    return outputs


def test_info_json_describes_this_cpu(info_outputs):
    from ettin_rerank.inference.cpu import cpu_kernels

    assert json.loads(info_outputs[0])["cpu"] == cpu_kernels().describe()


def test_info_text_names_the_flags_and_what_auto_picks(info_outputs):
    from ettin_rerank.inference.cpu import cpu_kernels

    lines = dict(line.split(None, 1) for line in info_outputs[1].splitlines())
    kernels = cpu_kernels()
    assert lines["cpu_flags"].startswith(" ".join(kernels.flags) or "none")
    assert lines["cpu_native_bf16"] == ("yes" if kernels.native_bf16 else "no")
    from ettin_rerank.inference.modes import auto_dtype, cpu_auto_probe

    assert lines["dtype_auto"] == str(auto_dtype("cpu")).removeprefix("torch.")
    probe = cpu_auto_probe()
    if probe.speedup is not None:  # the measured ratio is shown where this CPU was probed
        assert lines["cpu_bf16_speedup"].startswith(f"{probe.speedup:.2f}x fp32")


def test_info_json_shows_what_auto_picks_and_the_measured_ratio(info_outputs):
    from ettin_rerank.inference.modes import auto_dtype, cpu_auto_probe

    auto = json.loads(info_outputs[0])["dtype_auto"]
    assert auto["dtype"] == str(auto_dtype("cpu")).removeprefix("torch.")
    assert auto["bf16_speedup"] == cpu_auto_probe().speedup
    assert auto["bf16_min_speedup"] >= 1.0


@pytest.mark.parametrize(
    ("argv", "dtype"),
    [
        (["search", "docs", "a query"], "auto"),
        (["serve"], "auto"),
        (["rank", "-q", "x"], "float32"),  # the library's exact default elsewhere
        (["evaluate", "data"], "float32"),
        (["search", "docs", "a query", "--dtype", "float32"], "float32"),
    ],
)
def test_search_and_serve_default_to_auto(argv, dtype):
    from ettin_rerank.cli import build_parser

    assert build_parser().parse_args(argv).dtype == dtype
