"""`ettin-rerank calibrate`, run in process through the real CLI entry point on a tiny random
model and small SciFact subsets (train to fit, test to measure)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ettin_rerank.cli import main
from ettin_rerank.cli.calibrate import parse_dataset_split
from ettin_rerank.inference.calibration import CALIBRATION_FILE, Calibration

PAIRS = [
    ("does aspirin reduce the risk of heart attack?", "Aspirin lowers the risk of myocardial infarction."),
    ("does aspirin reduce the risk of heart attack?", "The kettle needs descaling once a month."),
    ("q", "a"),
]


@pytest.fixture(scope="module")
def scifact_subsets(scifact_dir, tmp_path_factory) -> dict[str, Path]:
    """Six SciFact queries per split, their judged documents and BM25 distractors (<= 300 documents)."""
    from ettin_rerank.retrieval.beir import load_beir
    from ettin_rerank.retrieval.nano import build_nano_subset

    root = tmp_path_factory.mktemp("scifact-subsets")
    subsets = {}
    for split in ("train", "test"):
        subsets[split] = root / f"scifact-{split}"
        build_nano_subset(
            load_beir(scifact_dir, split),
            n_queries=6,
            max_corpus=300,
            output_dir=subsets[split],
            show_progress=False,
        )
    return subsets


@pytest.fixture
def model_dir(tiny_reranker_dir, tmp_path) -> Path:
    """A private copy: calibrate writes into the model directory."""
    return Path(shutil.copytree(tiny_reranker_dir, tmp_path / "model"))


def test_calibrate_writes_a_calibration_the_reranker_uses_and_sentence_transformers_ignores(
    model_dir, scifact_subsets, tmp_path, capsys, monkeypatch
):
    from ettin_rerank import Reranker

    raw_before = Reranker.from_pretrained(model_dir).predict(PAIRS)
    report = tmp_path / "report"
    argv = ["calibrate", str(model_dir), str(scifact_subsets["train"]), "--report", str(report)]
    argv += ["--evaluate", f"{scifact_subsets['test']}:test"]
    assert main(argv) == 0
    out = capsys.readouterr().out

    calibration = Calibration.load(model_dir)
    assert calibration is not None and calibration.method == "platt"
    fitted_on = calibration.fitted_on
    assert fitted_on["dataset"] == "scifact-train" and fitted_on["split"] == "train"
    assert fitted_on["first_stage"] == "bm25" and fitted_on["depth"] == 100
    assert fitted_on["model"] == "model" and fitted_on["queries"] == 6
    assert 6 <= fitted_on["relevant_pairs"] < fitted_on["pairs"] <= 600
    for label in ("scifact-train-train", "scifact-test-test"):
        assert (report / f"{label}.scores.npz").is_file()
        assert (report / f"{label}.reliability.png").read_bytes()[:4] == b"\x89PNG"
        measured = json.loads((report / f"{label}.calibration.json").read_text())
        assert set(measured["activations"]) == {"sigmoid", "calibrated"}
        assert 0 <= measured["activations"]["calibrated"]["ece"] <= 1
        assert f"| {label} |" in out
    assert "ECE sigmoid" in out and "Brier calibrated" in out

    # Our Reranker reads the file and applies it; raw scores do not change.
    reranker = Reranker.from_pretrained(model_dir)
    assert reranker.calibration == calibration
    raw = reranker.predict(PAIRS)
    np.testing.assert_array_equal(raw, raw_before)
    calibrated = reranker.predict(PAIRS, activation="calibrated")
    np.testing.assert_allclose(calibrated, calibration.probabilities(raw), rtol=1e-6)

    # sentence-transformers still loads the directory and scores as before.
    import torch
    from sentence_transformers import CrossEncoder

    theirs = CrossEncoder(str(model_dir), activation_fn=torch.nn.Identity()).predict(PAIRS)
    np.testing.assert_allclose(theirs, raw, atol=1e-4)

    # A second fit from the cached scores: isotonic, and no pair is scored again.
    def refuse(self, pairs):
        raise AssertionError("rescored although the report directory caches these scores")

    monkeypatch.setattr(Reranker, "score_pairs", refuse)
    argv[argv.index("--report") :] = ["--report", str(report), "--method", "isotonic"]
    assert main(argv) == 0
    assert Calibration.load(model_dir).method == "isotonic"


def test_calibrate_refuses_a_missing_model_directory(tmp_path, capsys):
    assert main(["calibrate", str(tmp_path / "nowhere"), str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "nowhere" in error and "local model directory" in error


def test_calibrate_names_a_missing_split(model_dir, scifact_subsets, capsys):
    assert main(["calibrate", str(model_dir), str(scifact_subsets["test"])]) == 2  # the subset has no train
    assert "train.tsv" in capsys.readouterr().err
    assert not (model_dir / CALIBRATION_FILE).exists()


def test_dataset_split_parsing(tmp_path):
    assert parse_dataset_split("../shared/data/scifact:test") == ("../shared/data/scifact", "test")
    assert parse_dataset_split("data/trec-dl19-passage") == ("data/trec-dl19-passage", "test")
    assert parse_dataset_split("data/scifact:dev", default_split="x") == ("data/scifact", "dev")
    odd = tmp_path / "with:colon"
    odd.mkdir()
    assert parse_dataset_split(str(odd)) == (str(odd), "test")  # a path that exists is never split
