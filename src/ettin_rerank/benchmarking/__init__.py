"""Speed benchmarks: our engine in each mode against Sentence Transformers' CrossEncoder.

Library code behind `ettin-rerank bench` and `benchmarks/speed.py`: workloads, engines,
timing (alternating repeats, medians), achieved GFLOP/s against a measured matmul peak,
peak memory, JSON and PNG reports.
"""

from .runner import BenchConfig, run_bench, write_chart, write_json
from .workloads import beir_short_pairs, long_pairs

__all__ = ["BenchConfig", "beir_short_pairs", "long_pairs", "run_bench", "write_chart", "write_json"]
