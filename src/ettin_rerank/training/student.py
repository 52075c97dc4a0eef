"""Building the student: an Ettin size (random init), a reranker directory, or an encoder checkpoint.

Whatever the start, the student is an encoder plus the Ettin head (CLS pooling,
Dense+GELU, LayerNorm, Dense to one logit, identity activation), so it saves in the
Ettin modular layout that both `Reranker` and Sentence Transformers' `CrossEncoder` load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..family import SIZES, EttinSize, build_random_model, get_size
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.encoder import Encoder
from ..modeling.heads import ModularHead
from ..modeling.loading import (
    build_encoder,
    load_checkpoint,
    load_into,
    read_json,
    read_weights,
)

logger = logging.getLogger(__name__)

ENCODER_PREFIXES = ("model.", "bert.")


@dataclass
class Student:
    model: CrossEncoderModel
    tokenizer_dir: Path
    defaults: EttinSize  # where the default learning rate and batch size come from
    description: str


def nearest_size(num_parameters: int) -> EttinSize:
    published = [s for s in SIZES.values() if s.reranker_id]
    params = {"17m": 17.6e6, "32m": 32.8e6, "68m": 68.6e6, "150m": 150.9e6, "400m": 401.6e6, "1b": 1.0e9}
    return min(published, key=lambda s: abs(params.get(s.name, 0) - num_parameters))


def encoder_from_checkpoint(directory: str | Path, keep_layers: int | None = None) -> Encoder:
    """A plain ModernBERT or BERT encoder directory (config.json + weights), optionally its first N layers."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"encoder directory {directory} does not exist")
    config = dict(read_json(directory / "config.json"))
    total = int(config.get("num_hidden_layers", 0))
    if keep_layers is not None:
        if not (1 <= keep_layers <= total):
            raise ValueError(
                f"--keep-layers must be between 1 and the encoder's {total} layers, got {keep_layers}"
            )
        config["num_hidden_layers"] = keep_layers
        if isinstance(config.get("layer_types"), list):
            config["layer_types"] = config["layer_types"][:keep_layers]
    encoder = build_encoder(config, directory)
    state = read_weights(directory)
    for prefix in ENCODER_PREFIXES:
        state = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}
    load_into(encoder, state, directory)
    return encoder


def build_student(
    student: str | None,
    init_encoder: str | Path | None = None,
    keep_layers: int | None = None,
    tokenizer: str | Path | None = None,
    seed: int = 12,
) -> Student:
    """Resolve `--student SIZE|DIR [--init-encoder DIR] [--keep-layers N] [--tokenizer DIR]`."""
    generator = torch.Generator().manual_seed(seed)
    if init_encoder is not None:
        init_encoder = Path(init_encoder)
        encoder = encoder_from_checkpoint(init_encoder, keep_layers)
        tokenizer_dir = Path(tokenizer) if tokenizer else init_encoder
        _require_tokenizer(tokenizer_dir, "--init-encoder")
        model = CrossEncoderModel(encoder, ModularHead.ettin(encoder.config.hidden_size, generator))
        size = (
            get_size(student)
            if student and student in SIZES
            else nearest_size(sum(p.numel() for p in model.parameters()))
        )
        layers = f", first {keep_layers} layers" if keep_layers else ""
        return Student(model, tokenizer_dir, size, f"encoder {init_encoder}{layers} + fresh Ettin head")
    if not student:
        raise ValueError(
            "name a student: --student SIZE (one of "
            + ", ".join(SIZES)
            + ") or a reranker directory, or --init-encoder DIR"
        )
    if student in SIZES:
        if keep_layers is not None:
            raise ValueError(
                "--keep-layers applies to --init-encoder; for a random student pick a smaller --student size"
            )
        if tokenizer is None:
            raise ValueError(
                f"a random `{student}` student needs --tokenizer DIR (a ModernBERT tokenizer.json)"
            )
        tokenizer_dir = Path(tokenizer)
        _require_tokenizer(tokenizer_dir, "--tokenizer")
        model = build_random_model(student, seed=seed)
        return Student(
            model.train(), tokenizer_dir, get_size(student), f"random {student} Ettin reranker (seed {seed})"
        )
    path = Path(student)
    if not path.is_dir():
        raise ValueError(
            f"student {student!r} is neither an Ettin size ({', '.join(SIZES)}) nor a model directory"
        )
    if keep_layers is not None:
        raise ValueError("--keep-layers applies to --init-encoder, not to a reranker directory")
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint.model.head, ModularHead):
        raise ValueError(
            f"{path} is a {checkpoint.architecture} checkpoint; distillation continues only from Ettin-layout rerankers. "
            "Start from its encoder with --init-encoder instead."
        )
    tokenizer_dir = Path(tokenizer) if tokenizer else checkpoint.tokenizer_dir
    model = checkpoint.model
    size = nearest_size(sum(p.numel() for p in model.parameters()))
    return Student(model.train(), tokenizer_dir, size, f"reranker {path}")


def _require_tokenizer(directory: Path, option: str) -> None:
    if not (directory / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{option}: missing file {directory / 'tokenizer.json'} (the fast tokenizer the student reads)"
        )
