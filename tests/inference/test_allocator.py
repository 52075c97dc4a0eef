"""glibc's malloc tuning (inference/allocator.py): freed buffers stay in the process.

Each case runs in a fresh interpreter, since the tuning is process-wide and set once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ettin_rerank.inference.allocator import (
    GLIBC_MALLOC_ENV,
    GLIBC_TUNABLES_ENV,
    MALLOC_TUNING_ENV,
    on_glibc,
)

pytestmark = pytest.mark.skipif(not on_glibc(), reason="glibc's mallopt only")

# Rounds of a batch-like pattern: eight 4 MB buffers written, then all freed. Under glibc's defaults
# the heap grows by 32 MB and its top is returned to the kernel each round, so every round faults
# its pages in again; tuned, the second round onwards reuses them.
ROUNDS = """
import json, resource, sys
import numpy as np
from ettin_rerank.inference.allocator import keep_freed_memory
tuned = keep_freed_memory()
def round_():
    buffers = [np.ones(1 << 19) for _ in range(8)]  # 8 x 4 MB, every page written
    del buffers
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def run_fresh(code: str, tuning: str | None = None) -> str:
    """`code`'s last line of output, run in a new interpreter whose environment leaves the tuning to
    `tuning` ($ETTIN_RERANK_MALLOC_TUNING; None: unset) and sets none of glibc's own malloc settings."""
    skipped = {MALLOC_TUNING_ENV, GLIBC_TUNABLES_ENV, *GLIBC_MALLOC_ENV}
    env = {k: v for k, v in os.environ.items() if k not in skipped}
    if tuning is not None:
        env[MALLOC_TUNING_ENV] = tuning
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def run_rounds(tuning: str | None) -> dict:
    return json.loads(run_fresh(ROUNDS, tuning))


def test_tuned_malloc_reuses_freed_buffers_where_the_default_faults_them_in_again():
    default = run_rounds("0")
    tuned = run_rounds(None)
    assert default["tuned"] is False and tuned["tuned"] is True
    # 10 rounds x 32 MB = 80,000 pages of 4 KB faulted under the defaults, where the heap has 4 KB
    # pages; a kernel that backs it with transparent huge pages ("always") faults 512x fewer
    if default["faults"] < 1_000:
        pytest.skip(f"the defaults faulted only {default['faults']} pages here (huge pages?)")
    assert default["faults"] > 40_000, default
    assert tuned["faults"] < default["faults"] / 20, (tuned, default)


def test_a_cpu_model_prepared_for_inference_tunes_malloc(tiny_reranker_dir):
    code = (
        "from ettin_rerank import Reranker\n"
        "from ettin_rerank.inference.allocator import malloc_tuned\n"
        "before = malloc_tuned()\n"
        f"Reranker.from_pretrained({str(tiny_reranker_dir)!r}, device='cpu')\n"
        "print(before, malloc_tuned())\n"
    )
    assert run_fresh(code).split() == ["False", "True"]


def test_an_environment_that_tunes_glibc_itself_keeps_its_settings(monkeypatch):
    from ettin_rerank.inference.allocator import malloc_tuning_wanted

    for name in (MALLOC_TUNING_ENV, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=1000")
    assert malloc_tuning_wanted()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert not malloc_tuning_wanted()
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert not malloc_tuning_wanted()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv(MALLOC_TUNING_ENV, "0")
    assert not malloc_tuning_wanted()
