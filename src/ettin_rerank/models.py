"""Which model a command uses, and where its files are.

Order: an explicit `--model` / argument, then the `ETTIN_RERANK_MODEL` environment
variable, then the reranker bundled with the package (if this install carries one). A name that is
not a local directory is a Hugging Face Hub id (`resolve_model_path`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "ETTIN_RERANK_MODEL"
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*/*.json", "*/*.safetensors"]


@dataclass(frozen=True)
class ModelChoice:
    name_or_path: str
    source: str  # "argument", "environment (ETTIN_RERANK_MODEL)" or "bundled"

    def describe(self) -> str:
        return f"{self.name_or_path} (from {self.source})"


def bundled_model_dir() -> Path | None:
    return BUNDLED_MODEL_DIR if (BUNDLED_MODEL_DIR / "modules.json").is_file() else None


def resolve_model(explicit: str | os.PathLike | None = None) -> ModelChoice | None:
    """The model to use, or None when nothing is named and no model is bundled."""
    if explicit:
        return ModelChoice(str(explicit), "argument")
    if os.environ.get(ENV_VAR):
        return ModelChoice(os.environ[ENV_VAR], f"environment ({ENV_VAR})")
    bundled = bundled_model_dir()
    if bundled is not None:
        return ModelChoice(str(bundled), "bundled")
    return None


def require_model(explicit: str | os.PathLike | None = None) -> ModelChoice:
    choice = resolve_model(explicit)
    if choice is None:
        raise ValueError(
            f"no model given: pass --model DIR_OR_HUB_ID or set {ENV_VAR} "
            "(this install carries no bundled default model)"
        )
    return choice


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A local directory as is; anything else is treated as a Hugging Face Hub id and downloaded."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise FileNotFoundError(f"model directory {name} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=HUB_FILE_PATTERNS, etag_timeout=5))
    except Exception as error:  # offline mode, DNS failure, 404: all mean "not loadable here"
        raise FileNotFoundError(
            f"cannot load {name!r}: it is not a local directory and the Hugging Face Hub could not provide it "
            f"({type(error).__name__}). On a machine with Hub access run "
            f"`huggingface-cli download {name} --local-dir ./{name.split('/')[-1]}`, copy the directory here, "
            f"and pass its local path instead."
        ) from error


@dataclass(frozen=True)
class ModelCard:
    """What a model directory's card (README.md) declares in its YAML front matter, read once."""

    license: (
        str | None
    )  # `license:`, or `license_name:` when it is `other` (as on the Hub), with `license_note:`
    evaluation: str | None  # `evaluation_note:`: what the model scores, one line


def model_card(directory: str | os.PathLike) -> ModelCard:
    """The licence and evaluation a model directory's card declares; None for what it does not state
    (no card, or front matter that is not YAML)."""
    metadata = _card_metadata(directory)
    return ModelCard(license=_license(metadata), evaluation=_text(metadata.get("evaluation_note")))


def _card_metadata(directory: str | os.PathLike) -> dict:
    card = Path(directory) / "README.md"
    if not card.is_file():
        return {}
    from huggingface_hub.repocard import metadata_load  # a base dependency; parses the YAML front matter

    try:
        metadata = metadata_load(card) or {}
    except Exception:  # a card whose front matter is not YAML states nothing we can report
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _license(metadata: dict) -> str | None:
    license_id = metadata.get("license")
    if license_id == "other":
        license_id = metadata.get("license_name") or license_id
    if not license_id:
        return None
    note = metadata.get("license_note")
    return f"{license_id}: {note}" if note else str(license_id)


def _text(value: object) -> str | None:
    return str(value) if value else None
