"""glibc's malloc tuning (inference/allocator.py): freed buffers stay in the process.

Each case runs in a fresh interpreter, since the tuning is process-wide and set once.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from ettin_rerank.inference.allocator import MALLOC_TUNING_ENV

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)

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


def run_rounds(tuning: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != MALLOC_TUNING_ENV}
    if tuning is not None:
        env[MALLOC_TUNING_ENV] = tuning
    done = subprocess.run([sys.executable, "-c", ROUNDS], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tuned_malloc_reuses_freed_buffers_where_the_default_faults_them_in_again():
    default = run_rounds("0")
    tuned = run_rounds(None)
    assert default["tuned"] is False and tuned["tuned"] is True
    # 10 rounds x 32 MB = 80,000 pages of 4 KB faulted under the defaults
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
    env = {k: v for k, v in os.environ.items() if k != MALLOC_TUNING_ENV}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["False", "True"]
