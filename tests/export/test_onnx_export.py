"""`ettin-rerank export --format onnx`: one graph (encoder + head) that scores like our engine,
run by onnxruntime with no torch in the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX export needs the onnx extra")

from ettin_rerank import Reranker, models  # noqa: E402
from ettin_rerank.export.onnx import INT8_TARGETS, export_onnx  # noqa: E402
from ettin_rerank.export.onnx_scorer import MANIFEST_FILE, OnnxManifest, OnnxReranker  # noqa: E402
from reference_models import mixed_pairs  # noqa: E402

FP32_TOLERANCE = 1e-4  # the export runs the same fp32 math, padded: it must match our engine this closely


def exported_with_cli(model_dir: Path, out: Path, *flags: str) -> Path:
    from ettin_rerank.cli import main

    assert main(["export", str(model_dir), "--format", "onnx", "-o", str(out), *flags]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_onnx(tiny_reranker_dir, tmp_path_factory) -> Path:
    return exported_with_cli(tiny_reranker_dir, tmp_path_factory.mktemp("tiny-onnx"))


@pytest.fixture(scope="module")
def bundled_onnx(tmp_path_factory) -> Path:
    return export_onnx(models.BUNDLED_MODEL_DIR, tmp_path_factory.mktemp("bundled-onnx")).directory


@pytest.fixture(scope="module")
def engine_scores():
    """Our engine's exact scores of the parity pairs, per model directory."""
    cache: dict[Path, np.ndarray] = {}

    def scores(model_dir: Path) -> np.ndarray:
        if model_dir not in cache:
            cache[model_dir] = Reranker.from_pretrained(model_dir).predict(mixed_pairs())
        return cache[model_dir]

    return scores


@pytest.mark.parametrize("which", ["tiny", "bundled"])
def test_fp32_export_scores_like_our_engine(which, request, engine_scores, tiny_reranker_dir):
    export_dir = request.getfixturevalue(f"{which}_onnx")
    model_dir = tiny_reranker_dir if which == "tiny" else models.BUNDLED_MODEL_DIR
    reranker = OnnxReranker.from_dir(export_dir)
    got = reranker.score_pairs(mixed_pairs())  # lengths 3 to 700+: padding and truncation both matter
    want = engine_scores(model_dir)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= FP32_TOLERANCE
    ours = Reranker.from_pretrained(model_dir)
    assert reranker.max_length == ours.max_length
    assert ("token_type_ids" in reranker.manifest.inputs) == ours.model.uses_token_type_ids
    for name in ("tokenizer.json", "model.onnx", MANIFEST_FILE):
        assert (export_dir / name).is_file()


def test_bundled_export_carries_the_calibration(bundled_onnx):
    manifest = OnnxManifest.load(bundled_onnx)
    assert manifest.calibration == "calibration.json" and manifest.precision == "float32"
    reranker = OnnxReranker.from_dir(bundled_onnx)
    probabilities = reranker.calibration.probabilities(reranker.score_pairs(mixed_pairs()[:3]))
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_scores_come_back_in_input_order_whatever_the_batches(tiny_onnx):
    from ettin_rerank.scoring import PairScorer

    pairs = mixed_pairs()
    reranker = OnnxReranker.from_dir(tiny_onnx)
    assert isinstance(reranker, PairScorer) and reranker.name == str(tiny_onnx)
    whole = reranker.score_pairs(pairs)
    small = OnnxReranker.from_dir(tiny_onnx, batch_size=3)
    np.testing.assert_allclose(small.score_pairs(pairs), whole, atol=1e-5, rtol=0)
    reversed_scores = small.score_pairs(pairs[::-1])
    np.testing.assert_allclose(reversed_scores[::-1], whole, atol=1e-5, rtol=0)
    assert small.score_pairs([]).shape == (0,)


@pytest.mark.slow  # a second export (~20 s of CPU); the fp32 parity tests cover the export path
def test_int8_export_quantizes_the_encoder_and_reports_its_deviation(
    tiny_reranker_dir, tmp_path, engine_scores
):
    import onnx

    out = exported_with_cli(
        tiny_reranker_dir, tmp_path / "int8", "--quantize", "int8", "--int8-target", "avx2"
    )
    manifest = OnnxManifest.load(out)
    assert manifest.precision == "int8" and manifest.int8["per_channel"] is True
    assert manifest.int8["target"] == "avx2" and manifest.int8["weights"] == INT8_TARGETS["avx2"]["weights"]
    ops = [node.op_type for node in onnx.load(str(out / manifest.model_file)).graph.node]
    assert ops.count("MatMulInteger") >= 4 * 4  # every linear of the tiny encoder's 4 layers
    assert manifest.int8["float_nodes"], "the head must stay in float"
    deviation = np.abs(
        OnnxReranker.from_dir(out).score_pairs(mixed_pairs()) - engine_scores(tiny_reranker_dir)
    )
    print(f"int8 export, tiny model: max |diff| {deviation.max():.2e} vs our exact engine")
    assert 0 < deviation.max() < 0.05  # reported, loosely bounded: int8 changes the scores, not their scale


def test_scorer_runs_with_torch_blocked(tiny_onnx, engine_scores, tiny_reranker_dir):
    script = f"""
import json, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from ettin_rerank.export.onnx_scorer import OnnxReranker
pairs = [tuple(pair) for pair in json.load(sys.stdin)]
scores = OnnxReranker.from_dir({str(tiny_onnx)!r}).score_pairs(pairs)
loaded = sorted(name for name, module in sys.modules.items() if name.split(".")[0] == "torch" and module)
print(json.dumps({{"scores": scores.tolist(), "torch_modules": loaded}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(mixed_pairs()),
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["torch_modules"] == []
    np.testing.assert_allclose(
        report["scores"], engine_scores(tiny_reranker_dir), atol=FP32_TOLERANCE, rtol=0
    )


def test_bad_input_gets_a_clear_error(tiny_onnx, tiny_reranker_dir, tmp_path):
    reranker = OnnxReranker.from_dir(tiny_onnx)
    # one check of pairs for every scorer: the engine's TypeError (issue 20)
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a"):
        reranker.score_pairs([("q", "d"), ("only a query",)])
    with pytest.raises(FileNotFoundError, match="not an ONNX export"):
        OnnxReranker.from_dir(tiny_reranker_dir)
    stale = tmp_path / "stale"
    stale.mkdir()
    manifest = json.loads((tiny_onnx / MANIFEST_FILE).read_text())
    (stale / MANIFEST_FILE).write_text(json.dumps({**manifest, "version": 0}))
    with pytest.raises(ValueError, match="re-export"):
        OnnxReranker.from_dir(stale)
    with pytest.raises(ValueError, match="quantize must be one of"):
        export_onnx(tiny_reranker_dir, tmp_path / "x", quantize="int4")
    with pytest.raises(ValueError, match="max_length must be between"):
        export_onnx(tiny_reranker_dir, tmp_path / "x", max_length=10**9)


def test_an_export_drops_only_the_notices_a_user_cannot_act_on(caplog):
    import logging

    from ettin_rerank.export.onnx import _without_irrelevant_notices

    registry = logging.getLogger("torch.onnx._internal.exporter._registration")

    def log_four() -> None:
        registry.warning("torchvision is not installed. Skipping %s", "torchvision::nms")
        registry.warning("an exporter problem")
        logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
        logging.warning("a quantizer problem")

    with caplog.at_level(logging.WARNING):
        with _without_irrelevant_notices():
            log_four()
        assert [record.getMessage() for record in caplog.records] == [
            "an exporter problem",
            "a quantizer problem",
        ]
        caplog.clear()
        log_four()  # outside an export, nothing is filtered
        assert len(caplog.records) == 4
