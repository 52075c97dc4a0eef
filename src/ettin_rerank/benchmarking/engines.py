"""The engines a benchmark compares: ours in each mode, our ONNX export on onnxruntime and
OpenVINO, and Sentence Transformers' CrossEncoder (default loading and its onnx/openvino backends).

Each engine is a `scoring.PairScorer` (`name` is the engine's name, `score_pairs` the timed call)
with a `description` of how it was loaded, for the report. An engine that cannot load on this
machine (a missing package, an architecture a backend refuses) raises `EngineUnavailable` with
the reason; the runner reports it and measures the others.

The ONNX and OpenVINO peers all run our own export (`export/onnx.py`: encoder + head, padded) through
one scorer (`export.onnx_scorer.OnnxReranker`: the same tokenization, length-sorted padded batches of
`st_batch_size` pairs); only the runtime under it differs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..config.bench import (
    ENGINES,
    ONNX_MODES,
    OPENVINO_MODES,
    OUR_MODES,
    ST_BACKENDS,
    ST_MODES,
)
from ..config.loading import dtype_name
from ..export.onnx import export_onnx, head_nodes
from ..export.onnx_scorer import MANIFEST_FILE, OnnxManifest, OnnxReranker, export_tokenizer, padded_batch
from ..inference.reranker import Reranker
from ..inference.tokenization import PairTokenizer
from ..modeling.attention import default_backend
from ..scoring import PairScorer

logger = logging.getLogger(__name__)

# NNCF's post-training quantization: calibration batches drawn from other pairs than the timed ones
OPENVINO_CALIBRATION_PAIRS = 256


class EngineUnavailable(RuntimeError):
    """This engine cannot run on this machine; the message says exactly why (reported, not fatal)."""


class BenchEngine(PairScorer, Protocol):
    description: str  # how the engine was loaded: precision, attention


class OurEngine:
    """`ours-*`: our `Reranker` in one speed mode, with the benchmark's token budget per batch."""

    def __init__(self, name: str, reranker: Reranker, batch_tokens: int | None = None):
        self.name = name
        self.reranker = reranker
        self.batch_tokens = batch_tokens  # None: the reranker's default for its device
        precision = reranker.quantize or dtype_name(reranker.dtype)
        self.description = f"ettin-rerank {precision}, attention {reranker.attention}"

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        # score_report: the workload truncates to max_length on purpose, so predict's warning is noise
        return self.reranker.score_report(
            pairs, batch_tokens=self.batch_tokens, show_progress_bar=False
        ).scores


class SentenceTransformersEngine:
    """`st-default`: CrossEncoder's default loading (fp32, SDPA on padded batches).
    `st-bf16`: its best setting here: bf16 weights, flash attention 2 when installed (CUDA).
    `st-onnx`, `st-openvino`: its optimum backends (fp32), `EngineUnavailable` where they cannot load."""

    def __init__(self, name: str, model_dir: str, device: str, max_length: int | None, batch_size: int = 32):
        from sentence_transformers import CrossEncoder  # the eval extra, needed by these engines only

        kwargs: dict[str, Any] = {}  # CrossEncoder's keyword arguments
        self.description = "sentence-transformers CrossEncoder, default loading (fp32, sdpa)"
        if name == "st-bf16":
            # flash-attn's kernel exactly where our own bf16 would run it
            attn = (
                "flash_attention_2"
                if default_backend(torch.device(device), torch.bfloat16) == "flash"
                else "sdpa"
            )
            kwargs["model_kwargs"] = {"dtype": torch.bfloat16, "attn_implementation": attn}
            self.description = f"sentence-transformers CrossEncoder, bf16, {attn}"
        if name in ST_BACKENDS:
            kwargs["backend"] = ST_BACKENDS[name]
            self.description = (
                f"sentence-transformers CrossEncoder, backend={ST_BACKENDS[name]} (optimum), fp32"
            )
        self.name = name
        self.batch_size = batch_size
        try:
            self.model = CrossEncoder(
                model_dir, device=device, max_length=max_length, activation_fn=torch.nn.Identity(), **kwargs
            )
        except Exception as error:  # optimum missing or refusing the architecture: "not here", said why
            if name not in ST_BACKENDS:
                raise
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise EngineUnavailable(
                f"CrossEncoder(backend={ST_BACKENDS[name]!r}) cannot load {model_dir}: "
                f"{type(error).__name__}: {first_line}"
            ) from error

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        scores = self.model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(scores, dtype=np.float32)


class OnnxExportEngine:
    """`onnx-ours*`, `openvino*`: our ONNX export under onnxruntime or OpenVINO, padded batches."""

    def __init__(self, name: str, scorer: Any, description: str):
        self.name = name
        self.scorer = scorer  # an export.onnx_scorer.OnnxReranker
        self.description = description

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return self.scorer.score_pairs(pairs)


class OpenVinoSession:
    """An OpenVINO compiled model behind onnxruntime's `run(output_names, feeds)`, so `OnnxReranker`
    does the tokenization and batching for both runtimes."""

    def __init__(self, compiled: Any):
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        del output_names  # the export has one output
        return [self.request.infer(feeds)[self.compiled.output(0)]]


def exported(model_dir: str, workdir: Path, max_length: int | None, quantize: str | None) -> Path:
    """Our ONNX export of `model_dir` under `workdir`, written once per precision and length."""
    out = workdir / f"onnx-{quantize or 'fp32'}-{max_length or 'model'}"
    if not (out / MANIFEST_FILE).is_file():
        logger.info("exporting %s to %s", model_dir, out)
        export_onnx(model_dir, out, quantize=quantize, max_length=max_length)
    return out


def _onnx_engine(name: str, directory: Path, threads: int, batch_size: int) -> OnnxExportEngine:
    try:
        scorer = OnnxReranker.from_dir(directory, batch_size=batch_size, num_threads=threads)
    except ImportError as error:
        raise EngineUnavailable(
            f"{name} needs the onnx extra: pip install 'ettin-rerank[onnx]' ({error})"
        ) from error
    manifest = scorer.manifest
    detail = f", {manifest.int8['target']} int8 weights per channel" if manifest.int8 else ""
    return OnnxExportEngine(
        name, scorer, f"our ONNX export on onnxruntime, {manifest.precision}{detail}, padded"
    )


def _openvino_engine(
    name: str,
    directory: Path,
    threads: int,
    batch_size: int,
    calibration_pairs: Sequence[tuple[str, str]] | None,
) -> OnnxExportEngine:
    try:
        import openvino  # the openvino extra
    except ImportError as error:
        raise EngineUnavailable(
            f"{name} needs the openvino extra: pip install 'ettin-rerank[openvino]' ({error})"
        ) from error
    precision = OPENVINO_MODES[name]  # INFERENCE_PRECISION_HINT: set explicitly, never OpenVINO's default
    core = openvino.Core()
    if precision == "bf16":
        _require_openvino_bf16(core)
    manifest = OnnxManifest.load(directory)
    tokenizer = export_tokenizer(directory, manifest)
    model = core.read_model(str(directory / manifest.model_file))
    description = f"our ONNX export on OpenVINO, {precision} (INFERENCE_PRECISION_HINT {precision}), padded"
    if name == "openvino-int8":
        model = _nncf_int8(model, tokenizer, manifest, directory, calibration_pairs, batch_size)
        description = (
            "our ONNX export on OpenVINO, int8 by NNCF post-training quantization "
            f"({OPENVINO_CALIBRATION_PAIRS} calibration pairs, head in float), f32 elsewhere, padded"
        )
    settings = {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = core.compile_model(model, "CPU", settings)
    compiled_precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # an openvino.Type
    if compiled_precision != precision:  # a row must run the precision its name says
        raise EngineUnavailable(
            f"{name}: OpenVINO compiled the model in {compiled_precision}, not the {precision} asked for"
        )
    scorer = OnnxReranker(
        OpenVinoSession(compiled), tokenizer, manifest, name=str(directory), batch_size=batch_size
    )
    return OnnxExportEngine(name, scorer, description)


def _require_openvino_bf16(core: Any) -> None:
    """`openvino-bf16` runs only where OpenVINO's CPU plugin has bf16 kernels (AVX512_BF16 or AMX);
    elsewhere it would silently run f32 and duplicate the `openvino` row."""
    capabilities = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    if "BF16" not in capabilities:
        raise EngineUnavailable(
            "openvino-bf16: OpenVINO's CPU plugin has no bf16 on this CPU (it needs avx512_bf16 or "
            f"amx_bf16; its capabilities here: {' '.join(capabilities)}); it would run f32, as `openvino` does"
        )


def _nncf_int8(
    model: Any,
    tokenizer: PairTokenizer,
    manifest: OnnxManifest,
    directory: Path,
    calibration_pairs: Sequence[tuple[str, str]] | None,
    batch_size: int,
) -> Any:
    """NNCF's static int8 (activation scales from calibration pairs); the head is left in float."""
    try:
        import nncf  # the openvino extra
    except ImportError as error:
        raise EngineUnavailable(
            f"openvino-int8 needs nncf: pip install 'ettin-rerank[openvino]' ({error})"
        ) from error
    if not calibration_pairs:
        raise EngineUnavailable(
            "openvino-int8 needs calibration pairs (the runner draws them from the dataset)"
        )
    encoded = tokenizer.encode_pairs(list(calibration_pairs))
    order = np.argsort(-encoded.lengths, kind="stable")
    batches = [
        padded_batch(encoded.select(order[i : i + batch_size]), manifest.pad_token_id, manifest.inputs)
        for i in range(0, len(order), batch_size)
    ]
    return nncf.quantize(
        model,
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(names=head_nodes(directory / manifest.model_file), validate=False),
    )


def load_engine(
    name: str,
    model_dir: str,
    device: str = "cpu",
    max_length: int | None = None,
    batch_tokens: int | None = None,
    st_batch_size: int = 32,
    *,
    threads: int | None = None,
    workdir: Path | None = None,
    calibration_pairs: Sequence[tuple[str, str]] | None = None,
) -> BenchEngine:
    """The named engine, loaded. `threads`: the ONNX Runtime/OpenVINO thread count (default: torch's);
    `workdir`: where our ONNX exports are written; `calibration_pairs`: NNCF's, for openvino-int8."""
    if name in OUR_MODES:
        reranker = Reranker.from_pretrained(
            model_dir, device=device, max_length=max_length, **OUR_MODES[name]
        )
        return OurEngine(name, reranker, batch_tokens)
    if name in ONNX_MODES or name in OPENVINO_MODES:
        if device != "cpu":
            raise EngineUnavailable(f"{name} is a CPU engine (the bench runs on {device})")
        if workdir is None:
            raise ValueError(f"{name} needs a workdir for the ONNX export")
        threads = threads or torch.get_num_threads()
        try:
            directory = exported(model_dir, workdir, max_length, ONNX_MODES.get(name))
        except ImportError as error:
            raise EngineUnavailable(
                f"{name} needs the onnx extra to export: pip install 'ettin-rerank[onnx]' ({error})"
            ) from error
        if name in ONNX_MODES:
            return _onnx_engine(name, directory, threads, st_batch_size)
        return _openvino_engine(name, directory, threads, st_batch_size, calibration_pairs)
    if name in ST_MODES:
        return SentenceTransformersEngine(name, model_dir, device, max_length, st_batch_size)
    raise ValueError(f"unknown engine {name!r}; choose from {list(ENGINES)}")
