"""Export a reranker as one self-contained ONNX graph: encoder + scoring head, raw logit out.

The graph is our own model traced by `torch.onnx.export` (the dynamo exporter) with padded
inputs: `input_ids` and `attention_mask` (and `token_type_ids` for BERT), int64 of shape
(batch, length), both axes dynamic, and `logits` (batch,) float32 out. Attention in the graph is
the eager reference (`attention.reference_attention`: dense fp32 softmax with a key-padding mask
and, for ModernBERT's local layers, a window mask), so the export computes what our engine
computes, on padded batches and without the packed fast paths.

Beside the graph go the tokenizer files, `calibration.json` when the model has one, and a
manifest (`onnx_scorer.OnnxManifest`) saying what a runtime needs to score with no torch:
inputs, max length, pad id, precision. `onnx_scorer.OnnxReranker` is that runtime.

int8 (`quantize="int8"`) is onnxruntime's dynamic quantization of every encoder linear layer,
weights per output channel; the head stays fp32, as in our torch int8 mode. The weight and
activation types follow the CPU it is meant for (`INT8_TARGETS`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config.export import EXPORT, INT8_TARGETS, QUANTIZE_MODES
from ..inference.cpu import cpu_kernels
from ..modeling.attention import PADDED_ATTENTION, PaddedPacking
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.encoder import PackedInputs
from ..modeling.loading import TOKENIZER_FILES, load_checkpoint
from ..models import resolve_model_path
from .onnx_scorer import OnnxManifest

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
OUTPUT_NAME = "logits"
OPSET = 20  # what onnxruntime >= 1.17 and OpenVINO >= 2024 both run
HEAD_PREFIX = "model.head."  # initializer names of the head's weights in the exported graph
# Notices logged at WARNING about nothing the user can act on, by the logger that creates them (a
# logger's filter sees only its own records): torch's ONNX registry skips torchvision's operators
# when torchvision is absent (we export none), and onnxruntime's quantizer, on the root logger, asks
# for its shape-inference pre-processing.
IRRELEVANT_NOTICES = {
    "torch.onnx._internal.exporter._registration": "torchvision is not installed",
    "": "Please consider to run pre-processing",
}


class _DropNotice(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextmanager
def _without_irrelevant_notices() -> Iterator[None]:
    """`IRRELEVANT_NOTICES` dropped while an export runs; every other record passes."""
    filters = [(logging.getLogger(name), _DropNotice(prefix)) for name, prefix in IRRELEVANT_NOTICES.items()]
    for log, notice in filters:
        log.addFilter(notice)
    try:
        yield
    finally:
        for log, notice in filters:
            log.removeFilter(notice)


def int8_target_of_this_cpu() -> str:
    """The `INT8_TARGETS` key that matches the CPU this process runs on."""
    flags = cpu_kernels().flags
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


class PaddedCrossEncoder(nn.Module):
    """Our `CrossEncoderModel` behind padded inputs: (batch, length) ids and mask -> (batch,) logits."""

    def __init__(self, model: CrossEncoderModel):
        super().__init__()
        if model.head.pooling_mode != "cls":
            raise ValueError(
                f"the ONNX export supports CLS-pooling heads only; this model pools with {model.head.pooling_mode!r}"
            )
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        flat_types = None if token_type_ids is None else token_type_ids.reshape(-1)
        inputs = PackedInputs(input_ids.reshape(-1), flat_types, PaddedPacking.from_mask(attention_mask))
        return self.model(inputs, attention=PADDED_ATTENTION)


@dataclass
class OnnxExport:
    """What `export_onnx` wrote."""

    directory: Path
    model_path: Path
    manifest: OnnxManifest
    size_bytes: int  # of the graph file


def _example_inputs(uses_token_type_ids: bool) -> tuple[torch.Tensor, ...]:
    """A traced example whose rows differ in length, so padding is part of the graph."""
    input_ids = torch.full((2, 8), 5, dtype=torch.long)
    attention_mask = torch.ones(2, 8, dtype=torch.long)
    attention_mask[1, 5:] = 0
    if uses_token_type_ids:
        return input_ids, attention_mask, torch.zeros(2, 8, dtype=torch.long)
    return input_ids, attention_mask


def _trace(model: CrossEncoderModel, path: Path) -> list[str]:
    """Write the fp32 graph of `model` to `path`; returns the graph's input names."""
    wrapper = PaddedCrossEncoder(model).eval()
    example = _example_inputs(model.uses_token_type_ids)
    names = ["input_ids", "attention_mask", "token_type_ids"][: len(example)]
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices about axis names and deprecated specs
        program = torch.onnx.export(
            wrapper,
            example,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_shapes={name: {0: batch, 1: length} for name in names},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,  # one self-contained file
            verbose=False,
        )
        program.save(str(path), external_data=False)  # type: ignore[union-attr]  # dynamo=True: never the legacy None
    return names


def head_nodes(path: Path) -> list[str]:
    """Names of the graph's nodes that read the scoring head's weights: what int8 leaves in float."""
    import onnx  # the onnx extra, imported when an export runs

    graph = onnx.load(str(path), load_external_data=False).graph
    head_weights = {init.name for init in graph.initializer if init.name.startswith(HEAD_PREFIX)}
    return [node.name for node in graph.node if head_weights.intersection(node.input)]


def _quantize_int8(source: Path, target: Path, int8_target: str) -> dict:
    """onnxruntime dynamic int8 of the encoder's linear layers (per-channel weights); the head stays fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # the onnx extra

    settings = INT8_TARGETS[int8_target]
    head = head_nodes(source)
    quantize_dynamic(
        str(source),
        str(target),
        op_types_to_quantize=["MatMul", "Gemm"],  # the linear layers; attention's matmuls have no weights
        per_channel=True,
        reduce_range=settings["reduce_range"],
        weight_type=getattr(QuantType, settings["weights"]),
        nodes_to_exclude=head,
    )
    return {"target": int8_target, "per_channel": True, **settings, "float_nodes": head}


def export_onnx(
    model: str | Path,
    output_dir: str | Path,
    quantize: str | None = EXPORT.quantize,
    max_length: int | None = EXPORT.max_length,
    int8_target: str | None = EXPORT.int8_target,
) -> OnnxExport:
    """Write `model` (a directory or Hub id) to `output_dir` as an ONNX export a runtime scores with no torch.

    `quantize="int8"`: dynamic int8 weights for the CPU `int8_target` (a key of `INT8_TARGETS`;
    by default this machine's). `max_length`: tokens per pair (default: the model's own limit).
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    if int8_target is not None and int8_target not in INT8_TARGETS:
        raise ValueError(f"int8_target must be one of {sorted(INT8_TARGETS)}, got {int8_target!r}")
    source = resolve_model_path(model)
    checkpoint = load_checkpoint(source)
    limit = checkpoint.max_position_embeddings
    if max_length is not None and not (0 < max_length <= limit):
        raise ValueError(f"max_length must be between 1 and the model's {limit} positions, got {max_length}")
    resolved_length = max_length or min(checkpoint.max_length or limit, limit)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE

    cross_encoder = checkpoint.model.float().eval()
    int8 = None
    with _without_irrelevant_notices():
        if quantize == "int8":
            with tempfile.TemporaryDirectory() as scratch:
                fp32_path = Path(scratch) / MODEL_FILE
                inputs = _trace(cross_encoder, fp32_path)
                int8 = _quantize_int8(fp32_path, model_path, int8_target or int8_target_of_this_cpu())
        else:
            inputs = _trace(cross_encoder, model_path)

    for name in TOKENIZER_FILES:
        if (checkpoint.tokenizer_dir / name).is_file():
            shutil.copy2(checkpoint.tokenizer_dir / name, out / name)
    calibration = None
    if (source / "calibration.json").is_file():
        calibration = "calibration.json"
        shutil.copy2(source / calibration, out / calibration)
    st_config = source / "config_sentence_transformers.json"
    activation = json.loads(st_config.read_text()).get("activation_fn") if st_config.is_file() else None
    manifest = OnnxManifest(
        model_file=MODEL_FILE,
        inputs=inputs,
        output=OUTPUT_NAME,
        max_length=resolved_length,
        pad_token_id=int(getattr(checkpoint.model.config, "pad_token_id", 0) or 0),
        precision="int8" if int8 else "float32",
        opset=OPSET,
        source=str(model),
        architecture=checkpoint.architecture,
        activation=activation,
        calibration=calibration,
        int8=int8,
        notes=[
            "scores are raw logits (no activation); pairs longer than max_length are truncated longest-first",
            "padded batches with dense attention: ModernBERT's local layers are masked, not skipped",
        ],
    )
    manifest.save(out)
    logger.info("wrote %s (%.1f MB, %s)", model_path, model_path.stat().st_size / 2**20, manifest.precision)
    return OnnxExport(out, model_path, manifest, model_path.stat().st_size)
