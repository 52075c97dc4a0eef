"""`Reranker`: the one engine every surface (API, CLI, server, evaluation, training) scores with.

What it runs in is decided by `modes.py`, what callers hand it is checked by `inputs.py`, and raw
scores become activations and rankings in `scores.py` (numpy only).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config.loading import DEFAULT_BATCH_TOKENS, LOADING, PROGRESS_FROM_PAIRS, dtype_name
from ..modeling.attention import check_backend, default_backend
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.encoder import PackedInputs
from ..modeling.loading import load_checkpoint
from ..models import ModelCard, model_card, require_model, resolve_model_path
from .batching import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_CHUNK_PAIRS,
    chunk_bounds,
    iter_packed,
    iter_pair_batches,
    pack,
    packing_prefetch,
)
from .calibration import Calibration
from .cpu import cpu_kernels
from .inputs import validate_documents, validate_pairs
from .int8 import INT8_LINEARS, calibration_batches
from .long_documents import PairScores, PairsJob, TruncationOptions, check_long_documents, prepare
from .modes import is_int8_quantized, prepare_model, resolve_modes, warn_slow_bf16
from .onednn import OneDnnLinear
from .scores import apply_activation, check_activation, probability_activation, ranked_results
from .tokenization import EncodedPairs, PairTokenizer


class TruncationWarning(UserWarning):
    """`Reranker.predict` or `rank` cut documents to `max_length`: the rest of them was not scored.

    A warning (not a log record) because the caller can act on it: pass `long_documents="chunk"`, or
    silence it with `warnings.filterwarnings("ignore", category=TruncationWarning)`. Python shows it
    by default, pointing at the caller's line (and, under its default filter, an identical message
    from the same line once)."""


def warn_truncated(truncated: np.ndarray, max_length: int) -> None:
    """One warning for one `predict`/`rank` call whose pairs were cut, from the caller's line."""
    cut = int(truncated.sum())
    if cut:
        warnings.warn(
            f"{cut} of {len(truncated)} documents were cut to the model's {max_length} tokens and the "
            'rest of them was not scored; pass long_documents="chunk" to score every part of a long '
            "document (the best window counts)",
            TruncationWarning,
            stacklevel=3,  # warn_truncated <- predict/rank <- the caller
        )


class Reranker:
    """A cross-encoder reranker running our unpadded encoder; a `scoring.PairScorer`.

    >>> reranker = Reranker.from_pretrained("path/to/ettin-reranker-17m")
    >>> reranker.rank("what is ettin?", ["a giant", "a reranker family"])

    The constructor uses the model as it is given: it never moves, casts or quantizes it, and
    never changes torch's thread count. Its device and dtype are read from the model;
    `from_pretrained` (or `prepare_model`) decides them. `attention` names a backend of
    `modeling.attention.ATTENTION_BACKENDS`; by default the fastest one for the device and dtype.
    """

    def __init__(
        self,
        model: CrossEncoderModel,
        tokenizer: PairTokenizer,
        *,
        name_or_path: str = "<in memory>",
        attention: str | None = None,
        batch_tokens: int | None = None,
        calibration: Calibration | None = None,
        card: ModelCard | None = None,
        layout: str = "",
        architecture: str = "",
    ):
        if batch_tokens is not None and batch_tokens <= 0:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if any(p.dtype != torch.float32 for p in model.head.parameters()):
            raise ValueError(
                "the scoring head must be float32 (scores are computed in fp32); "
                "call ettin_rerank.inference.modes.prepare_model(model, device, dtype) first"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.calibration = calibration  # raw score -> P(relevant), from `ettin-rerank calibrate`
        card = card or ModelCard(license=None, evaluation=None)
        self.license = card.license  # what the model card declares; None when it states none
        self.evaluation = card.evaluation  # the figures the model card declares, or None
        self.layout = layout
        self.architecture = architecture
        self.device = next(model.head.parameters()).device
        self.dtype = model.encoder_dtype
        self.quantize = "int8" if is_int8_quantized(model.encoder) else None
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(
            self.device.type, DEFAULT_BATCH_TOKENS["cpu"]
        )
        self.attention = check_backend(attention or default_backend(self.device, self.dtype))
        if self.device.type == "cpu" and self.dtype != torch.float32 and not cpu_kernels().native_bf16:
            warn_slow_bf16(fell_back=False)  # a lent model runs as given (loading would have chosen fp32)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        device: str | torch.device = LOADING.device,
        dtype: str | torch.dtype = LOADING.dtype,
        max_length: int | None = LOADING.max_length,
        quantize: str | None = LOADING.quantize,
        num_threads: int | None = LOADING.num_threads,
        attention: str | None = LOADING.attention,
        batch_tokens: int | None = LOADING.batch_tokens,
    ) -> Reranker:
        """Load a model directory or Hub id; with none, the model the CLI uses ($ETTIN_RERANK_MODEL,
        then the reranker bundled with the package).

        Speed modes (see docs/speed.md): `dtype="float32"` is exact; `dtype="bfloat16"` (or
        float16 on CUDA) runs the encoder in half precision, except on a CPU without native bf16
        kernels, where it warns once and runs exact fp32; `dtype="auto"` is bf16 on a CUDA GPU with
        native bf16 (Ampere or newer) and on a CPU where a short cached probe measured bf16 clearly
        faster than fp32, exact fp32 elsewhere (never int8). `quantize="int8"` (CPU,
        fp32) swaps the encoder's linear layers for dynamically quantized int8 ones, smoothed by
        the input ranges of one exact pass over fixed calibration pairs (`inference/int8.py`). The scoring
        head always runs in fp32; `Reranker.dtype` is the dtype the encoder really runs in. `num_threads`, when given, sets torch's (process-wide) CPU
        thread count. `attention` overrides the attention backend (e.g. "eager", the reference);
        `batch_tokens` the real tokens per batch (by default 2,048 on CPU, 131,072 on CUDA).
        """
        if num_threads is not None:
            if num_threads <= 0:
                raise ValueError(f"num_threads must be positive, got {num_threads}")
            torch.set_num_threads(num_threads)  # process-wide: torch has one intra-op pool
        quantize = resolve_modes(device, dtype, quantize)[2]  # fail before loading
        if name_or_path is None:
            name_or_path = require_model().name_or_path
        directory = resolve_model_path(name_or_path)
        checkpoint = load_checkpoint(directory)
        limit = checkpoint.max_position_embeddings
        if max_length is not None and not (0 < max_length <= limit):
            raise ValueError(
                f"max_length must be between 1 and the model's {limit} positions, got {max_length}"
            )
        resolved = max_length or min(checkpoint.max_length or limit, limit)
        tokenizer = PairTokenizer.from_dir(
            checkpoint.tokenizer_dir, resolved, with_token_type_ids=checkpoint.model.uses_token_type_ids
        )
        return cls(
            prepare_model(
                checkpoint.model,
                device,
                dtype,
                quantize,
                int8_calibration=calibration_batches(tokenizer) if quantize == "int8" else (),
            ),
            tokenizer,
            name_or_path=str(name_or_path),
            attention=attention,
            batch_tokens=batch_tokens,
            calibration=Calibration.load(directory),
            card=model_card(directory),
            layout=checkpoint.layout,
            architecture=checkpoint.architecture,
        )

    @property
    def name(self) -> str:
        return self.name_or_path

    def compute_mode(self) -> dict[str, str | int | None]:
        """How this reranker computes its scores: what an evaluation report records beside its figures
        (bf16, int8 and exact fp32 rank a list slightly differently)."""
        return {
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            "quantize": self.quantize,
            "attention": self.attention,
            "max_length": self.max_length,
        }

    @property
    def probability_activation(self) -> str:
        """The activation for scores read as probabilities: see `probability_activation`."""
        return probability_activation(self.calibration)

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    @property
    def num_parameters(self) -> int:
        """The model's weights, those packed by the int8 and oneDNN linears (outside `parameters()`) too."""
        packed = sum(
            m.packed_numel for m in self.model.modules() if isinstance(m, (*INT8_LINEARS, OneDnnLinear))
        )
        return sum(p.numel() for p in self.model.parameters()) + packed

    def default_batch_tokens(self) -> int:
        """Real tokens per batch when a call names no budget."""
        return self.batch_tokens

    def encode(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        """Tokenize validated pairs; each carries its truncation flag."""
        return self.tokenizer.encode_pairs(validate_pairs(pairs), max_length=max_length)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """`scoring.PairScorer`: raw fp32 logits in input order (truncated to `max_length`, no progress
        bar). Silent about truncation: evaluation and teachers score fixed windows on purpose."""
        return self.score_report(pairs, show_progress_bar=False).scores

    @torch.inference_mode()
    def score_encoded(self, encoded: EncodedPairs) -> np.ndarray:
        """`scoring.TokenizedPairScorer`: these rows as one packed batch, in this thread, as given."""
        if not len(encoded):
            return np.empty(0, dtype=np.float32)
        batch = pack(encoded, np.arange(len(encoded))).to(self.device)
        logits = self.model(batch, attention=self.attention)
        return logits.float().cpu().numpy()

    def predict_encoded(
        self,
        encoded: EncodedPairs,
        batch_tokens: int | None = None,
        show_progress_bar: bool | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Raw fp32 logits for already tokenized pairs, in their order."""
        batches = iter_packed(
            encoded, batch_tokens or self.batch_tokens, packing_prefetch(self.device), max_pairs=batch_size
        )
        return self._score_batches(batches, len(encoded), show_progress_bar)

    def score_report(
        self,
        pairs: Iterable[tuple[str, str]],
        long_documents: str = "truncate",
        batch_tokens: int | None = None,
        show_progress_bar: bool | None = None,
        batch_size: int | None = None,
    ) -> PairScores:
        """Raw fp32 scores by the `long_documents` mode, with what reading each pair cut or windowed.

        The one path by which pairs are scored by a long-document mode: `predict`, `rank`, search
        and the integrations call it (the server, which batches across requests, reports through the
        same `long_documents.Prepared.report`). "truncate" cuts a pair to `max_length` (tokenizing a
        chunk ahead in a background thread while the model scores); "chunk" scores a document that
        does not fit in overlapping windows and keeps the max.
        """
        pairs = validate_pairs(pairs)
        if check_long_documents(long_documents) == "truncate":
            return self._score_truncated(pairs, batch_tokens, show_progress_bar, batch_size)
        # chunk: pairs are prepared a chunk at a time, so memory stays bounded for any input size
        parts = []
        with progress_bar(len(pairs), show_progress_bar) as progress:
            for start, end in chunk_bounds(pairs, DEFAULT_CHUNK_PAIRS, DEFAULT_CHUNK_CHARS):
                queries, documents = zip(*pairs[start:end], strict=True)
                job = PairsJob(list(queries), list(documents), TruncationOptions(long_document="chunk"))
                prepared = prepare(self.tokenizer, job)
                rows = self.predict_encoded(prepared.encoded, batch_tokens, False, batch_size)
                parts.append(prepared.report(rows))
                progress.update(end - start)
        return PairScores.concatenate(parts)

    def _score_truncated(
        self,
        pairs: list[tuple[str, str]],
        batch_tokens: int | None,
        show_progress_bar: bool | None,
        batch_size: int | None,
    ) -> PairScores:
        """Tokenize chunk by chunk in a background thread while the model scores; input order kept.
        The tokenizer's own truncation flags are kept on the way (no second tokenization)."""
        cut: list[np.ndarray] = []  # one array per tokenized chunk, in order (one producer thread)

        def encode(chunk: Sequence[tuple[str, str]]) -> EncodedPairs:
            encoded = self.tokenizer.encode_pairs(chunk)
            cut.append(encoded.truncated)
            return encoded

        batches = iter_pair_batches(
            pairs,
            encode,
            batch_tokens or self.batch_tokens,
            prefetch=packing_prefetch(self.device),
            max_pairs=batch_size,
        )
        scores = self._score_batches(batches, len(pairs), show_progress_bar)
        return PairScores.whole(scores, np.concatenate(cut) if cut else np.zeros(0, dtype=bool))

    @torch.inference_mode()
    def _score_batches(
        self, batches: Iterable[tuple[np.ndarray, PackedInputs]], total: int, show_progress_bar: bool | None
    ) -> np.ndarray:
        """Score (input indices, packed batch) items into one array in input order."""
        scores = np.empty(total, dtype=np.float32)
        if not total:
            return scores
        with progress_bar(total, show_progress_bar) as progress:
            for indices, batch in batches:
                batch = batch.to(self.device)
                logits = self.model(batch, attention=self.attention)  # (batch,) fp32
                scores[indices] = logits.float().cpu().numpy()
                progress.update(len(indices))
        return scores

    def predict(
        self,
        pairs: Iterable[tuple[str, str]],
        batch_size: int | None = None,
        batch_tokens: int | None = None,
        activation: str | None = None,
        show_progress_bar: bool | None = None,
        long_documents: str = "truncate",
    ) -> np.ndarray:
        """One fp32 score per (query, document) pair, in input order.

        activation: None or "identity" (raw logits), "sigmoid" (fp32), or "calibrated" (the
        probability of relevance from the model's `calibration.json`). long_documents: "truncate"
        cuts a pair to `max_length` (the document first); "chunk" scores a document that does not
        fit in overlapping windows and keeps the max. batch_size caps pairs per batch, beside the
        token budget `batch_tokens`. A progress bar shows by default from 10,000 pairs. With
        "truncate", a call that cut documents warns once (`TruncationWarning`), saying how many.
        """
        check_activation(activation, self.calibration)
        report = self.score_report(pairs, long_documents, batch_tokens, show_progress_bar, batch_size)
        if long_documents == "truncate":
            warn_truncated(report.truncated, self.max_length)
        return apply_activation(report.scores, activation, self.calibration)

    def rank(
        self,
        query: str,
        documents: Iterable[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        batch_tokens: int | None = None,
        activation: str | None = None,
        show_progress_bar: bool | None = None,
        long_documents: str = "truncate",
    ) -> list[dict[str, Any]]:
        """Documents sorted by score, highest first; equal scores keep the caller's order.

        Each result: `index` (into `documents`), `score`, and `document` with `return_documents`.
        With `long_documents="truncate"`, also `truncated`: whether the pair was cut to `max_length`
        (the rest of the document was not read). With `"chunk"`, `n_chunks` (windows scored) and
        `best_chunk`: the [start, end) character span of the window that scored best (the whole
        document when it fit). With "truncate", a call that cut documents warns once
        (`TruncationWarning`), saying how many.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        documents = validate_documents(documents)
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        check_activation(activation, self.calibration)
        pairs = [(query, d) for d in documents]
        raw = self.score_report(pairs, long_documents, batch_tokens, show_progress_bar, batch_size)
        if long_documents == "truncate":
            warn_truncated(raw.truncated, self.max_length)
        shown = documents if return_documents else None
        results = ranked_results(
            apply_activation(raw.scores, activation, self.calibration), shown, top_k, raw.scores
        )
        for item in results:
            index = item["index"]
            if long_documents == "truncate":
                item["truncated"] = bool(raw.truncated[index])
            else:
                item["n_chunks"] = int(raw.n_chunks[index])
                item["best_chunk"] = list(raw.best_spans[index] or (0, len(documents[index])))
        return results

    def __repr__(self) -> str:
        return (
            f"Reranker({self.name_or_path!r}, architecture={self.architecture!r}, device={self.device}, "
            f"dtype={self.dtype}, quantize={self.quantize}, attention={self.attention!r}, "
            f"max_length={self.max_length})"
        )


def progress_bar(total: int, show: bool | None) -> tqdm:
    """The scoring bar; by default it shows from `PROGRESS_FROM_PAIRS` pairs (short calls stay quiet)."""
    visible = show if show is not None else total >= PROGRESS_FROM_PAIRS
    return tqdm(total=total, desc="Scoring pairs", unit="pair", disable=not visible)
