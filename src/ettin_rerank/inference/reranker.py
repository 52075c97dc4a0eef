"""`Reranker`: the one engine every surface (API, CLI, server, evaluation, training) scores with."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config.loading import (
    ACTIVATIONS,
    AUTO_DTYPE,
    DEFAULT_BATCH_TOKENS,
    DTYPE_NAMES,
    LOADING,
    PROGRESS_FROM_PAIRS,
    QUANTIZE_MODES,
)
from ..modeling.activations import sigmoid_fp32
from ..modeling.attention import check_backend, default_backend
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.loading import load_checkpoint
from .batching import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_CHUNK_PAIRS,
    PackedInputs,
    chunk_bounds,
    iter_packed,
    iter_pair_batches,
    pack,
)
from .calibration import Calibration
from .cpu import NATIVE_BF16_FLAGS, cpu_kernels
from .long_documents import LONG_DOCUMENT_MODES, PairsJob, TruncationOptions, prepare
from .tokenization import EncodedPairs, PairTokenizer

logger = logging.getLogger(__name__)

# the torch dtype of each precision name a user may write
DTYPES = {name: getattr(torch, dtype) for name, dtype in DTYPE_NAMES.items()}
HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*/*.json", "*/*.safetensors"]


def check_quantize(quantize: str | None) -> str | None:
    """A `QUANTIZE_MODES` entry ("none" and "" read as None)."""
    if quantize is not None:
        quantize = str(quantize).lower()
    if quantize in ("none", ""):
        quantize = None
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    return quantize


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A `DTYPES` name or torch dtype as a torch dtype; "auto" stays "auto"."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower()
    if name == AUTO_DTYPE:
        return AUTO_DTYPE
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(
            f"unsupported dtype {dtype!r}; choose one of {sorted([AUTO_DTYPE, *DTYPES])}"
        ) from None


def resolve_modes(
    device: str | torch.device, dtype: str | torch.dtype, quantize: str | None
) -> tuple[torch.device, torch.dtype, str | None]:
    """The device, encoder dtype and int8 mode a model will really run in: decided here alone.

    `dtype="auto"` is bf16 on CUDA (where the GPU has bf16) and on CPUs with native bf16 kernels
    (`cpu.cpu_kernels`), exact fp32 elsewhere and with `quantize="int8"`. bf16 asked for on a CPU
    without native bf16 runs exact fp32 and warns once: there every bf16 matmul is converted back
    to fp32 (0.40x of exact, measured on an AVX2 EPYC), so it would be slower and less exact.
    """
    device = torch.device(device)
    quantize = check_quantize(quantize)
    wanted = parse_dtype(dtype)
    if quantize == "int8" and (device.type != "cpu" or wanted not in (AUTO_DTYPE, torch.float32)):
        raise ValueError(
            "quantize='int8' is a CPU mode with float32 activations; use device='cpu' and dtype='float32' "
            "(on CUDA use dtype='bfloat16' instead)"
        )
    if wanted == AUTO_DTYPE:
        return device, auto_dtype(device, quantize), quantize
    if device.type == "cpu" and wanted == torch.bfloat16 and not cpu_kernels().native_bf16:
        warn_bf16_fallback()
        return device, torch.float32, quantize
    return device, wanted, quantize


def auto_dtype(device: torch.device, quantize: str | None = None) -> torch.dtype:
    """What `dtype="auto"` runs on `device` (see `resolve_modes`)."""
    if quantize is not None:
        return torch.float32  # int8 linears take fp32 activations
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        return cpu_kernels().auto_dtype()
    return torch.float32


@functools.cache
def warn_bf16_fallback() -> None:
    """Once per process: bf16 was asked for on a CPU that would run it slowly, so fp32 runs instead."""
    kernels = cpu_kernels()
    logger.warning(
        "dtype=bfloat16 asked for, but this CPU has no native bf16 kernels (no %s; torch capability %s): "
        "running exact float32 instead, which is faster here. quantize='int8' is the fast CPU mode on "
        "this machine.",
        kernels.missing(NATIVE_BF16_FLAGS),
        kernels.torch_capability,
    )


def prepare_model(
    model: CrossEncoderModel,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    quantize: str | None = None,
) -> CrossEncoderModel:
    """Put a model the caller owns into an inference mode, in place: the encoder on `device` in
    `dtype` (optionally with int8 linears on CPU), the head in fp32, eval mode.

    `dtype` and `quantize` are resolved by `resolve_modes` ("auto"; bf16 on a CPU without native
    bf16 runs fp32). `Reranker.from_pretrained` does this to the model it loads; a caller lending
    its own model to `Reranker(...)` does it first (on a copy, if the original must stay as it is).
    """
    device, dtype, quantize = resolve_modes(device, dtype, quantize)
    model.encoder.to(device=device, dtype=dtype)
    model.head.to(device=device, dtype=torch.float32)  # the head always runs in fp32
    if quantize == "int8":
        quantize_linears_int8(model.encoder)  # the head and every activation stay fp32
    return model.eval()


def is_int8_quantized(model: torch.nn.Module) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def quantize_linears_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Swap every nn.Linear inside `module` for a dynamically quantized int8 one (in place).

    Weights are quantized once with one scale per output channel (a single scale per tensor let
    a few large rows crush the rest: on the bundled model it kept top-10 agreement 0.74 against
    exact); activations are quantized per batch on the fly and the outputs come back fp32
    (torch.ao dynamic quantization, fbgemm on x86).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the kernels are what we want
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = {torch.nn.Linear: per_channel_dynamic_qconfig}
        quantize_dynamic(module, qconfig, dtype=torch.qint8, inplace=True)
    return module


def resolve_dtype(
    dtype: str | torch.dtype, device: str | torch.device = "cpu", quantize: str | None = None
) -> torch.dtype:
    """The encoder dtype `dtype` runs as on `device` (see `resolve_modes`)."""
    return resolve_modes(device, dtype, quantize)[1]


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


def validate_pairs(pairs: Any) -> list[tuple[str, str]]:
    """Any iterable of (query, document) string pairs (lists, tuples, generators, numpy arrays) as a list."""
    if isinstance(pairs, str | bytes | dict) or not isinstance(pairs, Iterable):
        raise TypeError(f"pairs must be a list of (query, document) tuples, got {type(pairs).__name__}")
    out = []
    for position, pair in enumerate(pairs):
        if isinstance(pair, np.ndarray):
            pair = pair.tolist()
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(
                f"pairs[{position}] must be a (query, document) pair of strings, got {pair!r:.80}"
            )
        query, document = pair
        if not isinstance(query, str):
            raise TypeError(f"pairs[{position}][0] (the query) must be a string, got {type(query).__name__}")
        if not isinstance(document, str):
            raise TypeError(
                f"pairs[{position}][1] (the document) must be a string, got {type(document).__name__}"
            )
        out.append((str(query), str(document)))  # numpy.str_ -> str
    return out


def validate_documents(documents: Any) -> list[str]:
    """Any iterable of strings (lists, tuples, generators, numpy arrays of str) as a list."""
    if isinstance(documents, str | bytes | dict) or not isinstance(documents, Iterable):
        raise TypeError(f"documents must be a list of strings, got {type(documents).__name__}")
    out = []
    for position, document in enumerate(documents):
        if not isinstance(document, str):
            raise TypeError(f"documents[{position}] must be a string, got {type(document).__name__}")
        out.append(str(document))
    return out


@dataclass
class RawScores:
    """Raw fp32 scores of pairs in input order, with what the `long_documents` mode reports."""

    scores: np.ndarray  # (pairs,) fp32
    truncated: np.ndarray | None = None  # truncate: (pairs,) bool, the pair was cut to max_length
    n_chunks: np.ndarray | None = None  # chunk: (pairs,) int64, windows scored
    best_spans: list[tuple[int, int] | None] | None = None  # chunk: best window's characters; None: fit whole


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
        license: str | None = None,
        layout: str = "",
        architecture: str = "",
    ):
        if batch_tokens is not None and batch_tokens <= 0:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if any(p.dtype != torch.float32 for p in model.head.parameters()):
            raise ValueError(
                "the scoring head must be float32 (scores are computed in fp32); "
                "call ettin_rerank.inference.reranker.prepare_model(model, device, dtype) first"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.calibration = calibration  # raw score -> P(relevant), from `ettin-rerank calibrate`
        self.license = license  # what the model card declares; None when it states none
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
            # a lent model runs as given (from_pretrained would have chosen fp32 here)
            logger.warning(
                "dtype=%s on a CPU without native bf16 kernels (no %s): expect it to be slower than "
                "float32 here; quantize='int8' is the fast CPU mode on this machine",
                self.dtype,
                cpu_kernels().missing(NATIVE_BF16_FLAGS),
            )

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
        kernels, where it warns once and runs exact fp32; `dtype="auto"` is bf16 where native
        kernels exist (CUDA, AVX512_BF16/AMX CPUs) and fp32 elsewhere. `quantize="int8"` (CPU,
        fp32) swaps the encoder's linear layers for dynamically quantized int8 ones. The scoring
        head always runs in fp32; `Reranker.dtype` is the dtype the encoder really runs in. `num_threads`, when given, sets torch's (process-wide) CPU
        thread count. `attention` overrides the attention backend (e.g. "eager", the reference);
        `batch_tokens` the real tokens per batch (by default 8,192 on CPU, 131,072 on CUDA).
        """
        if num_threads is not None:
            if num_threads <= 0:
                raise ValueError(f"num_threads must be positive, got {num_threads}")
            torch.set_num_threads(num_threads)  # process-wide: torch has one intra-op pool
        resolve_modes(device, dtype, quantize)  # fail before loading
        from ..models import model_license, require_model

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
            prepare_model(checkpoint.model, device, dtype, quantize),
            tokenizer,
            name_or_path=str(name_or_path),
            attention=attention,
            batch_tokens=batch_tokens,
            calibration=Calibration.load(directory),
            license=model_license(directory),
            layout=checkpoint.layout,
            architecture=checkpoint.architecture,
        )

    @property
    def name(self) -> str:
        return self.name_or_path

    @property
    def probability_activation(self) -> str:
        """The activation for scores read as probabilities: see `probability_activation`."""
        return probability_activation(self.calibration)

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def default_batch_tokens(self) -> int:
        """Real tokens per batch when a call names no budget."""
        return self.batch_tokens

    def encode(self, pairs: Sequence[tuple[str, str]], max_length: int | None = None) -> EncodedPairs:
        """Tokenize validated pairs; each carries its truncation flag."""
        return self.tokenizer.encode_pairs(validate_pairs(pairs), max_length=max_length)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """`scoring.PairScorer`: raw fp32 logits in input order, no progress bar."""
        return self.predict(pairs, show_progress_bar=False)

    @torch.inference_mode()
    def score_encoded(self, encoded: EncodedPairs) -> np.ndarray:
        """`scoring.TokenizedPairScorer`: these rows as one packed batch, in this thread, as given."""
        if not len(encoded):
            return np.empty(0, dtype=np.float32)
        batch = pack(encoded, np.arange(len(encoded))).to(self.device)
        logits = self.model(batch.input_ids, batch.packing, batch.token_type_ids, attention=self.attention)
        return logits.float().cpu().numpy()

    def predict_encoded(
        self,
        encoded: EncodedPairs,
        batch_tokens: int | None = None,
        show_progress_bar: bool | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Raw fp32 logits for already tokenized pairs, in their order."""
        batches = iter_packed(encoded, batch_tokens or self.batch_tokens, max_pairs=batch_size)
        return self._score_batches(batches, len(encoded), show_progress_bar)

    def _raw_scores(
        self,
        pairs: list[tuple[str, str]],
        long_documents: str,
        batch_tokens: int | None,
        show_progress_bar: bool | None,
        batch_size: int | None,
    ) -> RawScores:
        """Raw scores by the `long_documents` mode, with what that mode reports per pair."""
        if check_long_documents(long_documents) == "chunk":
            return self._predict_chunked(pairs, batch_tokens, show_progress_bar, batch_size)
        return self._predict_truncated(pairs, batch_tokens, show_progress_bar, batch_size)

    def _predict_truncated(
        self,
        pairs: list[tuple[str, str]],
        batch_tokens: int | None,
        show_progress_bar: bool | None,
        batch_size: int | None,
    ) -> RawScores:
        """Tokenize chunk by chunk in a background thread while the model scores; input order kept.

        The tokenizer's own truncation flags are kept on the way, so what the cut lost is reported
        without a second tokenization."""
        cut: list[np.ndarray] = []  # one array per tokenized chunk, in order (one producer thread)

        def encode(chunk: Sequence[tuple[str, str]]) -> EncodedPairs:
            encoded = self.tokenizer.encode_pairs(chunk)
            cut.append(encoded.truncated)
            return encoded

        batches = iter_pair_batches(pairs, encode, batch_tokens or self.batch_tokens, max_pairs=batch_size)
        scores = self._score_batches(batches, len(pairs), show_progress_bar)
        truncated = np.concatenate(cut) if cut else np.zeros(0, dtype=bool)
        return RawScores(scores, truncated=truncated)

    def _predict_chunked(
        self,
        pairs: list[tuple[str, str]],
        batch_tokens: int | None,
        show_progress_bar: bool | None,
        batch_size: int | None,
    ) -> RawScores:
        """Documents that do not fit scored in overlapping windows, max over windows (`long_documents`).

        Returns the pair scores, each pair's window count, and the character span of each pair's
        best window (None where the document fit whole). Pairs are prepared a chunk at a time, so
        memory stays bounded for any input size.
        """
        scores = np.empty(len(pairs), dtype=np.float32)
        n_chunks = np.ones(len(pairs), dtype=np.int64)
        best_spans: list[tuple[int, int] | None] = [None] * len(pairs)
        with progress_bar(len(pairs), show_progress_bar) as progress:
            for start, end in chunk_bounds(pairs, DEFAULT_CHUNK_PAIRS, DEFAULT_CHUNK_CHARS):
                queries, documents = zip(*pairs[start:end], strict=True)
                job = PairsJob(list(queries), list(documents), TruncationOptions(long_document="chunk"))
                prepared = prepare(self.tokenizer, job)
                rows = self.predict_encoded(prepared.encoded, batch_tokens, False, batch_size)
                scores[start:end] = prepared.aggregate(rows)
                n_chunks[start:end] = prepared.n_chunks
                for pair, row in enumerate(prepared.best_rows(rows)):
                    best_spans[start + pair] = prepared.spans[row]
                progress.update(end - start)
        return RawScores(scores, n_chunks=n_chunks, best_spans=best_spans)

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
                logits = self.model(
                    batch.input_ids, batch.packing, batch.token_type_ids, attention=self.attention
                )  # (batch,) fp32
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
        token budget `batch_tokens`. A progress bar shows by default from 10,000 pairs.
        """
        pairs = validate_pairs(pairs)
        check_activation(activation, self.calibration)
        raw = self._raw_scores(pairs, long_documents, batch_tokens, show_progress_bar, batch_size).scores
        return apply_activation(raw, activation, self.calibration)

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
        document when it fit).
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        documents = validate_documents(documents)
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        check_activation(activation, self.calibration)
        pairs = [(query, d) for d in documents]
        raw = self._raw_scores(pairs, long_documents, batch_tokens, show_progress_bar, batch_size)
        shown = documents if return_documents else None
        results = ranked_results(
            apply_activation(raw.scores, activation, self.calibration), shown, top_k, raw.scores
        )
        for item in results:
            index = item["index"]
            if raw.truncated is not None:
                item["truncated"] = bool(raw.truncated[index])
            if raw.n_chunks is not None:
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


def check_activation(activation: str | None, calibration: Calibration | None) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation == "calibrated" and calibration is None:
        raise ValueError(
            "activation='calibrated' needs a calibrated model: this one has no calibration.json; "
            "fit one with `ettin-rerank calibrate MODEL DATASET`, or use activation='sigmoid'"
        )


def probability_activation(calibration: Calibration | None) -> str:
    """The activation to use where callers read a score as a probability (API relevance scores,
    framework thresholds like `relevance_score > 0.5`): "calibrated" when the model carries a
    calibration (`ettin-rerank calibrate`), else "sigmoid", the Cohere-style convention."""
    return "calibrated" if calibration is not None else "sigmoid"


def check_long_documents(mode: str) -> str:
    if mode not in LONG_DOCUMENT_MODES:
        raise ValueError(f"long_documents must be one of {LONG_DOCUMENT_MODES}, got {mode!r}")
    return mode


def apply_activation(
    scores: np.ndarray, activation: str | None, calibration: Calibration | None = None
) -> np.ndarray:
    """Raw fp32 scores through the named activation, computed in fp32 (sigmoid) or fp64 (calibrated)."""
    if activation == "sigmoid":
        return sigmoid_fp32(torch.from_numpy(scores)).numpy()
    if activation == "calibrated":
        check_activation(activation, calibration)
        return calibration.probabilities(scores)
    return scores


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score; ties keep ascending index (a stable sort of the negated scores)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def ranked_results(
    scores: np.ndarray,
    documents: Sequence[str] | None = None,
    top_k: int | None = None,
    raw_scores: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Results by descending score. With `raw_scores`, the order comes from them (an activation
    that saturates or is flat in places would otherwise tie what the model told apart)."""
    order = rank_order(scores if raw_scores is None else raw_scores)
    if top_k is not None:
        order = order[:top_k]
    results = []
    for index in order:
        item: dict[str, Any] = {"index": int(index), "score": float(scores[index])}
        if documents is not None:
            item["document"] = documents[index]
        results.append(item)
    return results
