"""`ettin-rerank export`: a model as one ONNX graph (encoder + head) that runs without torch."""

from __future__ import annotations

import argparse
from pathlib import Path

# the export's defaults and choices (export/onnx.py imports torch: imported when the command runs)
from ..config.export import INT8_TARGETS, QUANTIZE_MODES, ExportOptions
from ..models import require_model
from .options import Flags, add_model_argument, defaults_of

FORMATS = ("onnx",)


def register(subparsers) -> None:
    subparsers.add_parser(
        "export",
        help="write a model as one ONNX graph (encoder + head) that onnxruntime runs without torch",
        description=(
            "Traces the model (padded batches, the eager reference attention) into one self-contained ONNX "
            "graph with dynamic batch and length: input_ids, attention_mask (and token_type_ids for BERT) in, "
            "the raw logit out. Writes the tokenizer files, calibration.json when the model has one, and "
            "ettin_onnx.json describing the inputs, max length and precision. Score it with "
            "ettin_rerank.export.onnx_scorer.OnnxReranker (onnxruntime and tokenizers only)."
        ),
        add_arguments=add_export_arguments,
        needs_extra="onnx",
    ).set_defaults(handler=run_export)


def add_export_arguments(export: argparse.ArgumentParser) -> None:
    flags = Flags(export, defaults_of(ExportOptions))
    add_model_argument(export, "model", nargs="?")
    export.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="(default: %(default)s)")
    flags.add(
        "--quantize",
        "int8: dynamic int8 weights (per channel) for the encoder; the head stays fp32",
        choices=[mode for mode in QUANTIZE_MODES if mode],
    )
    flags.add(
        "--int8-target",
        "the CPU the int8 graph is for (default: this machine's)",
        choices=sorted(INT8_TARGETS),
    )
    flags.add("--max-length", "tokens per pair (default: the model's)", type=int)
    export.add_argument("-o", "--output", dest="output_dir", required=True, type=Path, metavar="OUT_DIR")


def run_export(args: argparse.Namespace) -> int:
    from ..export.onnx import export_onnx  # torch and onnx: imported when the command runs

    result = export_onnx(
        require_model(args.model).name_or_path,
        args.output_dir,
        quantize=args.quantize,
        max_length=args.max_length,
        int8_target=args.int8_target,
    )
    manifest = result.manifest
    print(
        f"wrote {result.model_path} ({result.size_bytes / 2**20:.1f} MiB, {manifest.precision}, "
        f"inputs {', '.join(manifest.inputs)}, max length {manifest.max_length})"
    )
    return 0
