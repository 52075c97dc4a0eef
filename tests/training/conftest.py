"""Fixtures for the distillation tests: calibrated random teachers, hand-made Parquet, subprocess helpers.

Torch runs single-threaded here: on a small shared machine, two OpenMP threads are
often many times slower than one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
WORDS = [
    "cell",
    "protein",
    "gene",
    "cancer",
    "tumor",
    "immune",
    "virus",
    "vaccine",
    "brain",
    "neuron",
    "heart",
    "blood",
    "insulin",
    "glucose",
    "mouse",
    "patient",
    "trial",
    "dose",
    "therapy",
    "receptor",
    "signal",
    "pathway",
    "mutation",
    "expression",
    "growth",
    "risk",
]


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "ettin_rerank", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ettin-rerank {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


def kill_when(args: list[str], ready, timeout: float = 300) -> None:
    """Start the CLI, SIGKILL it as soon as `ready()` is true; fail if it finished first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ettin_rerank", *args],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(
                    f"the run ended (rc {process.returncode}) before it could be killed: {process.stderr.read()[-2000:]!r}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the run to make progress")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        process.stderr.close()


def make_teacher(
    out: Path,
    tokenizer_dir: Path,
    size: str = "tiny",
    seed: int = 7,
    target_std: float = 3.0,
    max_length: int = 64,
) -> Path:
    """A random-weight Ettin reranker whose output layer is rescaled so its logits spread like a real teacher's.

    Raw random heads give nearly constant logits (std ~0.03 around an offset); the final
    Dense is scaled and re-centred on probe pairs to std `target_std`, mean about 1.
    """
    from ettin_rerank.family import build_random_model
    from ettin_rerank.inference.reranker import Reranker
    from ettin_rerank.inference.tokenization import PairTokenizer
    from ettin_rerank.modeling.loading import save_modular

    model = build_random_model(size, seed=seed)
    reranker = Reranker(model, PairTokenizer.from_dir(tokenizer_dir, max_length, False))
    rng = np.random.default_rng(seed)
    probe = [(" ".join(rng.choice(WORDS, 6)), " ".join(rng.choice(WORDS, 40))) for _ in range(64)]
    scores = reranker.predict(probe)
    factor = target_std / float(scores.std())
    linear = model.head.layers[-1].linear
    with torch.no_grad():
        linear.weight.mul_(factor)
        linear.bias.copy_(linear.bias * factor - float(scores.mean()) * factor + 1.0)
    return save_modular(model, tokenizer_dir, out, max_length=max_length)


def write_pairs(
    path: Path, n_queries: int = 8, per_query: int = 8, seed: int = 0, with_teacher: bool = True
) -> Path:
    """Hand-made pairs with the columns `select`/`distill` read, plus provenance."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {
        k: [] for k in ("query_id", "query", "doc_id", "document", "label", "first_stage_rank")
    }
    for q in range(n_queries):
        query = " ".join(rng.choice(WORDS, 5))
        for d in range(per_query):
            rows["query_id"].append(f"q{q}")
            rows["query"].append(query)
            rows["doc_id"].append(f"d{q}-{d}")
            rows["document"].append(" ".join(rng.choice(WORDS, int(rng.integers(8, 30)))))
            rows["label"].append(1 if d == per_query - 1 else 0)
            rows["first_stage_rank"].append(d + 1)
    table = pa.table(rows)
    if with_teacher:
        table = table.append_column(
            "teacher_score", pa.array(rng.normal(1.0, 3.0, table.num_rows).astype(np.float32))
        )
    for name, value in (
        ("dataset", "handmade"),
        ("split", "train"),
        ("first_stage", "bm25"),
        ("teacher", "t"),
        ("created_at", "now"),
    ):
        table = table.append_column(name, pa.array([value] * table.num_rows))
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / "part-00000.parquet")
    return path


def read_log(out: Path) -> dict:
    return json.loads((out / "training_log.json").read_text())
