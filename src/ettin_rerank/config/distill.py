"""The distillation step's configuration (`ettin-rerank distill`, `training/distill.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LOSSES = ("mse", "margin-mse")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class DistillConfig:
    train: str  # select's output directory (with train/ and heldout/) or a directory of Parquet shards
    output_dir: str
    student: str | None = None  # an Ettin size (tiny, 17m, ...) or an Ettin-layout reranker directory
    init_encoder: str | None = None  # a ModernBERT or BERT encoder directory to start from
    keep_layers: int | None = None  # keep the first N encoder layers of --init-encoder
    tokenizer: str | None = None  # tokenizer directory for a random student
    eval_dataset: str | None = None  # BEIR directory for the NanoBEIR-style NDCG@10 evaluation
    eval_split: str = "test"
    eval_queries: int = 50  # queries of the NanoBEIR-style subset
    eval_max_corpus: int = 5000  # corpus cap of the subset
    eval_top_k: int = 100  # BM25 top-k reranked at evaluation
    heldout: str | None = None  # held-out pairs (default TRAIN/heldout when present)
    heldout_max_pairs: int = 5000
    loss: str = "mse"  # a LOSSES entry
    learning_rate: float | None = None  # default: the published value for the student's size
    batch_size: int | None = None  # global pairs per step; default: the published value for the size
    max_steps: int | None = None  # overrides epochs
    epochs: float = 1.0
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0  # transformers Trainer default
    max_grad_norm: float = 1.0  # transformers Trainer default
    max_length: int = 512  # tokens per pair during training and evaluation
    micro_batch_tokens: int | None = None  # real tokens per forward (gradient accumulation below the batch)
    eval_every: float = 0.05  # fraction of training between evaluations
    keep_best: int = 2  # best checkpoints kept (the last one is always kept as well, for resuming)
    eval_at_start: bool = True  # measure the untrained student too (step 0)
    seed: int = 12
    precision: str = (
        "auto"  # a PRECISIONS entry; auto: bf16 autocast where `inference.modes.auto_dtype` picks bf16
    )
    device: str | None = None  # default: cuda (this process's local rank) when available, else cpu
    data_seed: int | None = None  # shuffling seed (default: seed)

    def resume_key(self) -> dict[str, Any]:
        """Settings that must match for a restart to continue a run."""
        ignore = {"device", "eval_at_start"}
        return {k: v for k, v in asdict(self).items() if k not in ignore}
