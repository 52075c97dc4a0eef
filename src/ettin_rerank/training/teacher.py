"""Teachers: anything that gives one raw fp32 logit per (query, document) pair.

`load_teacher` accepts whatever `Reranker.from_pretrained` loads (Ettin modular
checkpoints, ModernBERT/BERT sequence-classification cross-encoders); for other
Sentence Transformers CrossEncoder directories it falls back to
`sentence_transformers.CrossEncoder` with an identity activation, so the teacher's
raw logits (not sigmoids) are what the student learns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class Teacher:
    """Scores (query, document) pairs with raw fp32 logits."""

    name: str

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class RerankerTeacher(Teacher):
    def __init__(self, reranker, name: str, batch_tokens: int | None = None):
        self.reranker = reranker
        self.name = name
        self.batch_tokens = batch_tokens

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        encoded = self.reranker.tokenizer.encode_pairs(list(zip(queries, documents, strict=True)))
        return self.reranker.predict_encoded(encoded, batch_tokens=self.batch_tokens, show_progress_bar=False)


class SentenceTransformersTeacher(Teacher):
    def __init__(self, model, name: str, batch_size: int = 32):
        self.model = model
        self.name = name
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        pairs = list(zip(queries, documents, strict=True))
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(scores, dtype=np.float32).reshape(-1)


def load_teacher(
    name_or_path: str | Path,
    device: str = "cpu",
    dtype: str = "float32",
    max_length: int | None = None,
    batch_tokens: int | None = None,
) -> Teacher:
    """Load a teacher, failing with one message that says what each loader objected to."""
    from ..inference.reranker import Reranker

    name = str(name_or_path)
    try:
        reranker = Reranker.from_pretrained(name, device=device, dtype=dtype, max_length=max_length)
        return RerankerTeacher(reranker, name, batch_tokens)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"cannot load teacher {name!r}: {error}") from error
    except (ValueError, TypeError, KeyError, OSError) as error:
        if not Path(name).is_dir():
            raise ValueError(f"cannot load teacher {name!r}: {error}") from error
        engine_error = error
    return _sentence_transformers_teacher(name, device, max_length, engine_error)


def _sentence_transformers_teacher(
    name: str, device: str, max_length: int | None, engine_error: Exception
) -> Teacher:
    try:
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(name, device=device, activation_fn=torch.nn.Identity(), max_length=max_length)
    except Exception as st_error:  # many loader exception types; report both loaders' reasons
        raise ValueError(
            f"cannot load teacher {name!r}: ettin-rerank's engine said: {engine_error}; "
            f"sentence-transformers' CrossEncoder said: {type(st_error).__name__}: {st_error}"
        ) from st_error
    if int(getattr(model, "num_labels", 1)) != 1:
        raise ValueError(
            f"teacher {name!r} has {model.num_labels} outputs; a teacher must give one logit per pair"
        )
    logger.info("teacher %s loaded with sentence-transformers CrossEncoder (identity activation)", name)
    return SentenceTransformersTeacher(model, name)
