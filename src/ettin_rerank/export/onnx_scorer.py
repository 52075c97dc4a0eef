"""Score pairs with an exported ONNX reranker: onnxruntime and `tokenizers`, no torch.

The export (`export/onnx.py`) is a padded graph: `input_ids`, `attention_mask` (and
`token_type_ids` for BERT) of shape (batch, length) in, one raw logit per row out. This scorer
tokenizes with the checkpoint's own `tokenizer.json` through `PairTokenizer` (so truncation and
the pair template are those of the torch engine), sorts pairs by length so each padded batch
wastes little, and scatters the logits back to input order.

Torch must never be imported here: the point of the export is a runtime without it (a test
runs this module with torch blocked).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.calibration import Calibration
from ..inference.inputs import validate_pairs
from ..inference.tokenization import EncodedPairs, PairTokenizer
from ..scoring import checked_scores

logger = logging.getLogger(__name__)

MANIFEST_FILE = "ettin_onnx.json"  # what a runtime reads first: inputs, max length, precision
MANIFEST_FORMAT = "ettin-rerank-onnx"
MANIFEST_VERSION = 1
DEFAULT_BATCH_SIZE = 32  # pairs per padded batch, as Sentence Transformers' CrossEncoder.predict


@dataclass
class OnnxManifest:
    """What an exported directory holds and how to feed it (written as `ettin_onnx.json`)."""

    model_file: str  # the ONNX graph, relative to the directory
    inputs: list[str]  # graph inputs, each int64 (batch, length): input_ids, attention_mask[, token_type_ids]
    output: str  # (batch,) float32 raw logits, no activation
    max_length: int  # tokens per pair (query + document + special tokens); longer pairs are truncated
    pad_token_id: int  # the id padding slots hold (masked out; any id would do)
    precision: str  # "float32" or "int8" (dynamic int8 weights, see `int8`)
    opset: int
    source: str  # the model directory or Hub id it was exported from
    architecture: str  # e.g. "BertModel + modular head"
    activation: str | None = (
        None  # the Sentence Transformers activation_fn the model declares (informational)
    )
    calibration: str | None = None  # calibration.json beside the graph: raw score -> P(relevant)
    int8: dict[str, Any] | None = None  # the quantization settings, when precision is int8
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION
    notes: list[str] = field(default_factory=list)

    def save(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> OnnxManifest:
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {directory} is not an ONNX export; "
                "make one with `ettin-rerank export MODEL --format onnx -o DIR`"
            )
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"{path} is not a version-{MANIFEST_VERSION} {MANIFEST_FORMAT} manifest "
                f"(format {data.get('format')!r}, version {data.get('version')!r}); re-export the model"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def padded_batch(encoded: EncodedPairs, pad_token_id: int, inputs: Sequence[str]) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays (rows, longest) for the graph's inputs."""
    lengths = encoded.lengths
    width = int(lengths.max())
    real = np.arange(width)[None, :] < lengths[:, None]  # (rows, width)
    input_ids = np.full((len(encoded), width), pad_token_id, dtype=np.int64)
    input_ids[real] = np.concatenate(encoded.input_ids)
    feeds = {"input_ids": input_ids, "attention_mask": real.astype(np.int64)}
    if "token_type_ids" in inputs:
        token_type_ids = np.zeros((len(encoded), width), dtype=np.int64)
        if encoded.token_type_ids is not None:
            token_type_ids[real] = np.concatenate(encoded.token_type_ids)
        feeds["token_type_ids"] = token_type_ids
    return feeds


def export_tokenizer(directory: str | Path, manifest: OnnxManifest) -> PairTokenizer:
    """The export's tokenizer, truncating pairs to the manifest's max length."""
    return PairTokenizer.from_dir(
        directory, manifest.max_length, with_token_type_ids="token_type_ids" in manifest.inputs
    )


class OnnxReranker:
    """A `scoring.PairScorer` over an ONNX export, on onnxruntime; no torch anywhere.

    >>> reranker = OnnxReranker.from_dir("my-reranker-onnx")
    >>> reranker.score_pairs([("what is ettin?", "a giant")])  # raw fp32 logits
    """

    def __init__(
        self,
        session: Any,  # anything with onnxruntime's `run(output_names, feeds)` over the export's graph
        tokenizer: PairTokenizer,
        manifest: OnnxManifest,
        *,
        name: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        calibration: Calibration | None = None,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.name = name
        self.batch_size = batch_size
        self.calibration = calibration

    @classmethod
    def from_dir(
        cls,
        directory: str | Path,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        num_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> OnnxReranker:
        """Load an export; `num_threads` sets onnxruntime's intra-op threads (None: its default)."""
        import onnxruntime  # the onnx extra

        directory = Path(directory)
        manifest = OnnxManifest.load(directory)
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            if num_threads <= 0:
                raise ValueError(f"num_threads must be positive, got {num_threads}")
            options.intra_op_num_threads = num_threads
        session = onnxruntime.InferenceSession(
            str(directory / manifest.model_file), options, providers=list(providers)
        )
        return cls(
            session,
            export_tokenizer(directory, manifest),
            manifest,
            name=str(directory),
            batch_size=batch_size,
            calibration=Calibration.load(directory) if manifest.calibration else None,
        )

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def score_encoded(self, encoded: EncodedPairs) -> np.ndarray:
        """These rows as one padded batch: (rows,) float32 raw logits."""
        if not len(encoded):
            return np.empty(0, dtype=np.float32)
        feeds = padded_batch(encoded, self.manifest.pad_token_id, self.manifest.inputs)
        (logits,) = self.session.run([self.manifest.output], feeds)
        return np.asarray(logits, dtype=np.float32).reshape(-1)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """`scoring.PairScorer`: raw fp32 logits in input order; batches of `batch_size` pairs of
        similar length (longest first), each padded to its longest pair."""
        encoded = self.tokenizer.encode_pairs(validate_pairs(pairs))
        scores = np.empty(len(encoded), dtype=np.float32)
        order = np.argsort(-encoded.lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            scores[rows] = self.score_encoded(encoded.select(rows))
        return checked_scores(scores, len(encoded), self.name)
