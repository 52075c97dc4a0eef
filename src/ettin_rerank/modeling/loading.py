"""Checkpoint layouts on disk -> `CrossEncoderModel` + tokenizer directory, and back.

Supported layouts:
1. Sentence Transformers modular CrossEncoder (`modules.json`): a Transformer module
   (encoder `config.json` + weights + tokenizer) followed by Pooling / Dense / LayerNorm
   modules. This is the Ettin layout.
2. transformers `ModernBertForSequenceClassification` checkpoints.
3. transformers `BertForSequenceClassification` checkpoints (ms-marco MiniLM cross-encoders).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .activations import activation_from_import_path, activation_import_path
from .bert import BertConfig, BertModel
from .crossencoder import CrossEncoderModel
from .encoder import Encoder, EncoderConfig
from .heads import (
    BertClassificationHead,
    Head,
    ModernBertClassificationHead,
    ModularHead,
    SentenceTransformersDense,
    SentenceTransformersLayerNorm,
)
from .modernbert import ModernBertConfig, ModernBertModel

logger = logging.getLogger(__name__)

# model_type in config.json -> (config class, encoder class, prefix of the encoder in *ForSequenceClassification)
ENCODER_FAMILIES: dict[str, tuple[type[EncoderConfig], type[Encoder], str]] = {
    "modernbert": (ModernBertConfig, ModernBertModel, "model."),
    "bert": (BertConfig, BertModel, "bert."),
}
CLASSIFICATION_HEADS: dict[str, type[Head]] = {
    "ModernBertForSequenceClassification": ModernBertClassificationHead,
    "BertForSequenceClassification": BertClassificationHead,
}
SUPPORTED_ARCHITECTURES = sorted(
    [*CLASSIFICATION_HEADS, "ModernBertModel", "BertModel (with a modular Sentence Transformers head)"]
)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

LAYOUT_MODULAR = "sentence-transformers-modular"
LAYOUT_SEQUENCE_CLASSIFICATION = "sequence-classification"

# What Sentence Transformers 6.x writes in modules.json.
ST_MODULE_TYPES = {
    "Transformer": "sentence_transformers.base.modules.transformer.Transformer",
    "Pooling": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "Dense": "sentence_transformers.base.modules.dense.Dense",
    "LayerNorm": "sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm",
}


class CheckpointError(ValueError):
    """A model directory that cannot be loaded; the message says what is wrong and what to do."""


@dataclass
class LoadedCheckpoint:
    model: CrossEncoderModel
    tokenizer_dir: Path  # where tokenizer.json lives
    layout: str
    architecture: str  # e.g. "ModernBertModel + modular head"
    max_length: int | None  # the checkpoint's own limit (Sentence Transformers config or tokenizer), if any
    max_position_embeddings: int


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"missing file {path}: the model directory is incomplete")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); the file is corrupt") from error


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in a directory (safetensors, sharded safetensors or a torch .bin)."""
    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            if name == "model.safetensors":
                return load_file(path)
            if name.endswith(".index.json"):
                shards = sorted(set(read_json(path)["weight_map"].values()))
                state: dict[str, torch.Tensor] = {}
                for shard in shards:
                    if not (directory / shard).is_file():
                        raise CheckpointError(f"missing file {directory / shard} named in {path}")
                    state.update(load_file(directory / shard))
                return state
            return torch.load(path, map_location="cpu", weights_only=True)
        except CheckpointError:
            raise
        except Exception as error:  # corrupt files surface as many exception types
            raise CheckpointError(f"cannot read weights from {path}: {error}") from error
    raise CheckpointError(
        f"missing file {directory / WEIGHT_FILES[0]}: no model weights ({', '.join(WEIGHT_FILES)})"
    )


def load_into(module: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"weights in {where} lack {len(missing)} tensors, e.g. {missing[:5]}")
    unused = sorted(set(state) - set(expected))
    if unused:
        logger.debug("ignoring %d tensors in %s not used for scoring: %s", len(unused), where, unused[:5])
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise CheckpointError(
                f"tensor {name} in {where} has shape {tuple(state[name].shape)}, config implies {tuple(tensor.shape)}"
            )
    module.load_state_dict({k: state[k] for k in expected}, strict=True)


def build_encoder(config: dict[str, Any], where: Path) -> Encoder:
    model_type = config.get("model_type")
    if model_type not in ENCODER_FAMILIES:
        raise CheckpointError(
            f"unknown architecture in {where / 'config.json'}: model_type={model_type!r}, "
            f"architectures={config.get('architectures')}; supported: {SUPPORTED_ARCHITECTURES}"
        )
    config_cls, encoder_cls, _ = ENCODER_FAMILIES[model_type]
    return encoder_cls(config_cls.from_dict(config))


def _load_transformer_dir(directory: Path) -> tuple[Encoder, Head | None, dict[str, Any]]:
    """Encoder (and the classification head, if the checkpoint is a *ForSequenceClassification)."""
    config = read_json(directory / "config.json")
    encoder = build_encoder(config, directory)
    architectures = config.get("architectures") or []
    head_cls = next((CLASSIFICATION_HEADS[a] for a in architectures if a in CLASSIFICATION_HEADS), None)
    head = head_cls(config) if head_cls is not None else None
    state = read_weights(directory)
    prefix = ENCODER_FAMILIES[config["model_type"]][2]
    # Strip the base-model prefix; keys the encoder does not own belong to the head.
    state = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}
    encoder_keys = set(encoder.state_dict())
    load_into(encoder, {k: v for k, v in state.items() if k in encoder_keys}, directory)
    if head is not None:
        load_into(head, {k: v for k, v in state.items() if k not in encoder_keys}, directory)
    return encoder, head, config


def _pooling_mode(config: dict[str, Any], where: Path) -> str:
    if "pooling_mode" in config:
        return config["pooling_mode"]
    for key, mode in (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean")):
        if config.get(key):
            return mode
    raise CheckpointError(
        f"{where}: pooling config {config} uses a mode ettin-rerank does not support (cls, mean)"
    )


def _module_kind(entry: dict[str, Any]) -> str:
    return str(entry.get("type", "")).rsplit(".", 1)[-1]


def _max_length_hint(directory: Path) -> int | None:
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        path = directory / name
        if path.is_file():
            value = read_json(path).get(key)
            if isinstance(value, int) and 0 < value < 1_000_000:
                return value
    return None


def load_checkpoint(directory: str | Path) -> LoadedCheckpoint:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory")
    if (directory / "modules.json").is_file():
        return _load_modular(directory)
    if not (directory / "config.json").is_file():
        raise CheckpointError(
            f"missing file {directory / 'config.json'} (and no modules.json): {directory} is not a model directory"
        )
    encoder, head, config = _load_transformer_dir(directory)
    if head is None:
        raise CheckpointError(
            f"{directory} holds a bare encoder ({config.get('architectures')}) without a scoring head; "
            f"supported: {SUPPORTED_ARCHITECTURES}. Create a reranker from an encoder with "
            "`ettin-rerank distill --init-encoder`."
        )
    _require_tokenizer(directory)
    return LoadedCheckpoint(
        model=CrossEncoderModel(encoder, head).eval(),
        tokenizer_dir=directory,
        layout=LAYOUT_SEQUENCE_CLASSIFICATION,
        architecture=(config.get("architectures") or ["?"])[0],
        max_length=_max_length_hint(directory),
        max_position_embeddings=int(config.get("max_position_embeddings", 512)),
    )


def _require_tokenizer(directory: Path) -> None:
    if not (directory / "tokenizer.json").is_file():
        raise CheckpointError(
            f"missing file {directory / 'tokenizer.json'}: ettin-rerank needs the fast tokenizer file "
            "(save one with transformers' AutoTokenizer.save_pretrained)"
        )


def _load_modular(directory: Path) -> LoadedCheckpoint:
    modules = read_json(directory / "modules.json")
    if not isinstance(modules, list) or not modules or _module_kind(modules[0]) != "Transformer":
        raise CheckpointError(f"{directory / 'modules.json'} must start with a Transformer module")
    transformer_dir = directory / modules[0].get("path", "")
    encoder, classification_head, config = _load_transformer_dir(transformer_dir)
    _require_tokenizer(transformer_dir)

    pooling_mode: str | None = None
    layers: list[nn.Module] = []
    for entry in modules[1:]:
        kind, module_dir = _module_kind(entry), directory / entry.get("path", "")
        if kind == "Pooling":
            pooling_mode = _pooling_mode(read_json(module_dir / "config.json"), module_dir)
        elif kind == "Dense":
            cfg = read_json(module_dir / "config.json")
            dense = SentenceTransformersDense(
                int(cfg["in_features"]),
                int(cfg["out_features"]),
                bias=bool(cfg.get("bias", True)),
                activation=activation_from_import_path(cfg.get("activation_function")),
            )
            load_into(dense, read_weights(module_dir), module_dir)
            layers.append(dense)
        elif kind == "LayerNorm":
            cfg = read_json(module_dir / "config.json")
            norm = SentenceTransformersLayerNorm(int(cfg["dimension"]))
            load_into(norm, read_weights(module_dir), module_dir)
            layers.append(norm)
        else:
            raise CheckpointError(
                f"{directory / 'modules.json'}: module type {entry.get('type')!r} is not supported "
                "(supported after the Transformer: Pooling, Dense, LayerNorm)"
            )

    if classification_head is not None:
        if pooling_mode is not None or layers:
            raise CheckpointError(
                f"{directory}: a classification Transformer followed by head modules is not supported"
            )
        head: Head = classification_head
        architecture = (config.get("architectures") or ["?"])[0]
    else:
        if pooling_mode is None or not layers:
            raise CheckpointError(
                f"{directory / 'modules.json'}: an encoder needs a Pooling module and Dense layers ending in one "
                "output to score pairs"
            )
        head = ModularHead(pooling_mode, layers)
        architecture = f"{(config.get('architectures') or [config.get('model_type')])[0]} + modular head"
    return LoadedCheckpoint(
        model=CrossEncoderModel(encoder, head).eval(),
        tokenizer_dir=transformer_dir,
        layout=LAYOUT_MODULAR,
        architecture=architecture,
        max_length=_max_length_hint(directory) or _max_length_hint(transformer_dir),
        max_position_embeddings=int(config.get("max_position_embeddings", 512)),
    )


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _contiguous_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_modular(
    model: CrossEncoderModel, tokenizer_dir: str | Path, output_dir: str | Path, max_length: int | None = None
) -> Path:
    """Write `model` in the Sentence Transformers modular CrossEncoder layout (the Ettin layout)."""
    if not isinstance(model.head, ModularHead):
        raise TypeError("save_modular needs a model with a ModularHead (the Ettin head)")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = Path(tokenizer_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise CheckpointError(f"missing file {tokenizer_dir / 'tokenizer.json'}")

    _write_json(out / "config.json", model.encoder.config.to_dict())
    save_file(_contiguous_state(model.encoder), out / "model.safetensors", metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file() and (tokenizer_dir / name).resolve() != (out / name).resolve():
            shutil.copyfile(tokenizer_dir / name, out / name)
    if max_length is not None:
        tokenizer_config_path = out / "tokenizer_config.json"
        tokenizer_config = read_json(tokenizer_config_path) if tokenizer_config_path.is_file() else {}
        tokenizer_config["model_max_length"] = int(max_length)
        _write_json(tokenizer_config_path, tokenizer_config)

    modules = [{"idx": 0, "name": "0", "path": "", "type": ST_MODULE_TYPES["Transformer"]}]
    hidden = model.encoder.config.hidden_size
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": ST_MODULE_TYPES["Pooling"]})
    _write_json(
        out / "1_Pooling" / "config.json",
        {"embedding_dimension": hidden, "pooling_mode": model.head.pooling_mode, "include_prompt": True},
    )
    for offset, layer in enumerate(model.head.layers):
        idx = offset + 2
        is_last = offset == len(model.head.layers) - 1
        if isinstance(layer, SentenceTransformersDense):
            kind = "Dense"
            config = {
                "in_features": layer.linear.in_features,
                "out_features": layer.linear.out_features,
                "bias": layer.linear.bias is not None,
                "activation_function": activation_import_path(layer.activation),
                "module_input_name": "sentence_embedding",
                # Sentence Transformers' CrossEncoder reads its logits from the "scores" output.
                "module_output_name": "scores" if is_last else "sentence_embedding",
            }
        elif isinstance(layer, SentenceTransformersLayerNorm):
            kind = "LayerNorm"
            config = {"dimension": layer.norm.normalized_shape[0]}
        else:
            raise TypeError(f"save_modular cannot write a {type(layer).__name__} head layer")
        folder = f"{idx}_{kind}"
        modules.append({"idx": idx, "name": str(idx), "path": folder, "type": ST_MODULE_TYPES[kind]})
        _write_json(out / folder / "config.json", config)
        save_file(_contiguous_state(layer), out / folder / "model.safetensors", metadata={"format": "pt"})

    _write_json(out / "modules.json", modules)
    _write_json(
        out / "sentence_bert_config.json",
        {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
            "module_output_name": "token_embeddings",
        },
    )
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "activation_fn": "torch.nn.modules.linear.Identity",
            "default_prompt_name": None,
            "model_type": "CrossEncoder",
            "prompts": {},
        },
    )
    return out


def export_half_precision(
    source_dir: str | Path, output_dir: str | Path, max_length: int | None = None
) -> Path:
    """Re-save a modular reranker with fp16 encoder weights (half the bytes); the head stays fp32.

    Loaders compute in fp32 by default: both this engine and transformers upcast the
    stored fp16 weights, so only the rounding of the weights themselves changes scores.
    `max_length` replaces the checkpoint's own limit (e.g. the length the model was trained at).
    """
    checkpoint = load_checkpoint(source_dir)
    checkpoint.model.encoder.half()
    return save_modular(
        checkpoint.model, checkpoint.tokenizer_dir, output_dir, max_length=max_length or checkpoint.max_length
    )
