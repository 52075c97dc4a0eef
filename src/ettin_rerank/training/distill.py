"""Step 4, `distill`: a student learns the teacher's raw logits (pointwise MSE by default).

The Ettin recipe: AdamW, 3% linear warmup then linear decay, bf16 autocast where the
hardware has it, per-size learning rate and global batch from the published table,
evaluation every 5% of training with the best checkpoints kept and the best loaded at
the end. Runs as one process or under `torchrun` (DDP; gloo on CPU, nccl on CUDA).

Data order is a function of (seed, epoch, step) only, and every step's global batch is
the same however many processes share it: each process takes a slice, micro-batches it
by a token budget, and divides the summed per-pair losses by the *global* batch size,
so averaged gradients equal the single-process ones. A restart resumes from the last
checkpoint (weights, optimizer, scheduler, log) and continues the same data order.

Output directory:
    OUT/                      the final (best) student in the Ettin modular layout
    OUT/checkpoints/step-N/   kept checkpoints (best k by the selection metric + the last)
    OUT/training_log.json     config, per-step loss and learning rate, evaluations
    OUT/loss_curve.png        training loss, held-out MSE and NDCG@10 over steps
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..config.distill import PRECISIONS, DistillConfig
from ..family import EttinSize
from ..inference.batching import pack, plan_batches
from ..inference.modes import auto_dtype
from ..inference.reranker import Reranker
from ..inference.tokenization import EncodedPairs, PairTokenizer
from ..modeling.attention import default_backend
from ..modeling.crossencoder import CrossEncoderModel
from ..modeling.loading import save_modular
from ..retrieval.beir import load_beir
from .io import TRAIN_COLUMNS, check_columns, parquet_files, provenance_summary, read_table
from .losses import LOSSES, per_pair_loss
from .report import plot_loss_curve
from .student import Student, build_student

if TYPE_CHECKING:
    from .callbacks import NanoEvaluator

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "training_log.json"
CONFIG_FILE = "distill_config.json"
STATE_FILE = "trainer_state.pt"
DEFAULT_MICRO_BATCH_TOKENS = {"cpu": 8192, "cuda": 65536}


@dataclass
class TrainingData:
    encoded: EncodedPairs
    teacher: np.ndarray  # (pairs,) float32
    group: np.ndarray  # (pairs,) int64 query index
    query_ids: np.ndarray  # (pairs,) str
    provenance: dict[str, str | list[str]] = field(default_factory=dict)  # several values: merged sources

    def __len__(self) -> int:
        return len(self.teacher)


def resolve_train_dirs(train: str | Path, heldout: str | Path | None) -> tuple[Path, Path | None]:
    train = Path(train)
    if (train / "train").is_dir():
        held = Path(heldout) if heldout else (train / "heldout")
        return train / "train", held if held.is_dir() and any(held.glob("*.parquet")) else None
    return train, Path(heldout) if heldout else None


def load_pairs(
    path: Path, tokenizer: PairTokenizer, max_pairs: int | None = None, seed: int = 0
) -> TrainingData:
    table = read_table(path, TRAIN_COLUMNS, "distill")
    if max_pairs is not None and table.num_rows > max_pairs:
        # Whole queries, chosen deterministically, until max_pairs.
        ids = np.asarray(table.column("query_id").to_pylist(), dtype=str)
        unique = np.unique(ids)
        np.random.default_rng(seed).shuffle(unique)
        kept, total = set(), 0
        counts = dict(zip(*np.unique(ids, return_counts=True), strict=True))
        for q in unique:
            if total >= max_pairs:
                break
            kept.add(q)
            total += counts[q]
        table = table.filter(np.isin(ids, list(kept)))
    teacher = table.column("teacher_score").to_numpy(zero_copy_only=False).astype(np.float32)
    if not np.all(np.isfinite(teacher)):
        raise ValueError(f"{path}: some teacher_score values are NaN or infinite")
    query_ids = np.asarray(table.column("query_id").to_pylist(), dtype=str)
    _, group = np.unique(query_ids, return_inverse=True)
    pairs = list(zip(table.column("query").to_pylist(), table.column("document").to_pylist(), strict=True))
    encoded = tokenizer.encode_pairs(pairs)
    return TrainingData(encoded, teacher, group.astype(np.int64), query_ids, provenance_summary(table))


# --- data order -----------------------------------------------------------------------------


def epoch_order(data: TrainingData, epoch: int, seed: int, loss: str) -> np.ndarray:
    """A permutation of the pairs; for margin-mse, queries are shuffled with their pairs kept together."""
    rng = np.random.default_rng([seed, epoch])
    if loss != "margin-mse":
        return rng.permutation(len(data))
    groups = rng.permutation(int(data.group.max()) + 1)
    by_group = np.argsort(data.group, kind="stable")
    starts = np.searchsorted(data.group[by_group], np.arange(int(data.group.max()) + 2))
    return np.concatenate([by_group[starts[g] : starts[g + 1]] for g in groups])


def global_batch(data: TrainingData, step: int, batch_size: int, seed: int, loss: str) -> np.ndarray:
    steps_per_epoch = max(1, len(data) // batch_size)
    epoch, position = divmod(step, steps_per_epoch)
    order = epoch_order(data, epoch, seed, loss)
    return order[position * batch_size : (position + 1) * batch_size]


def split_for_rank(indices: np.ndarray, group: np.ndarray, rank: int, world: int, loss: str) -> np.ndarray:
    """This process's share of the global batch; margin-mse never splits a query's pairs."""
    if world == 1:
        return indices
    if loss != "margin-mse":
        return np.array_split(indices, world)[rank]
    groups = group[indices]
    boundaries = [0] + [i for i in range(1, len(indices)) if groups[i] != groups[i - 1]] + [len(indices)]
    cuts = [0]
    for part in range(1, world):
        target = part * len(indices) / world
        cuts.append(max(cuts[-1], min(boundaries, key=lambda b: abs(b - target))))
    cuts.append(len(indices))
    return indices[cuts[rank] : cuts[rank + 1]]


def micro_batches(data: TrainingData, indices: np.ndarray, budget: int, loss: str) -> list[np.ndarray]:
    """Cut a process's batch into forwards of at most `budget` tokens (query groups kept whole for margin-mse)."""
    if len(indices) == 0:
        return []
    lengths = data.encoded.lengths[indices]
    if loss != "margin-mse":
        return [indices[b] for b in plan_batches(lengths, budget)]
    out: list[np.ndarray] = []
    current: list[np.ndarray] = []  # the query groups of the forward being filled
    used = 0
    groups = data.group[indices]
    start = 0
    for i in range(1, len(indices) + 1):
        if i == len(indices) or groups[i] != groups[i - 1]:
            run_tokens = int(lengths[start:i].sum())
            if current and used + run_tokens > budget:
                out.append(np.concatenate(current))
                current, used = [], 0
            current.append(indices[start:i])
            used += run_tokens
            start = i
    if current:
        out.append(np.concatenate(current))
    return out


# --- schedule, checkpoints ------------------------------------------------------------------


def linear_schedule(warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return float(step + 1) / float(max(1, warmup_steps))
        return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))

    return factor


def _checkpoint_dirs(output_dir: Path) -> list[tuple[int, Path]]:
    root = output_dir / CHECKPOINT_DIR
    found = []
    if root.is_dir():
        for path in root.glob("step-*"):
            if (path / STATE_FILE).is_file() and path.name[5:].isdigit():
                found.append((int(path.name[5:]), path))
    return sorted(found)


def _atomic_dir(final: Path, write) -> None:
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    write(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """The numbers a run trains by, fixed once the student and the data are known."""

    learning_rate: float
    batch_size: int  # global pairs per step
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_interval: int  # steps between evaluations (each followed by a checkpoint)
    micro_batch_tokens: int  # real tokens per forward
    data_seed: int

    @classmethod
    def plan(
        cls, cfg: DistillConfig, defaults: EttinSize, num_pairs: int, batch_size: int, device: torch.device
    ) -> Schedule:
        steps_per_epoch = max(1, num_pairs // batch_size)
        total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        return cls(
            learning_rate=cfg.learning_rate if cfg.learning_rate is not None else defaults.learning_rate,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
            eval_interval=max(1, round(cfg.eval_every * total_steps)),
            micro_batch_tokens=cfg.micro_batch_tokens or DEFAULT_MICRO_BATCH_TOKENS.get(device.type, 8192),
            data_seed=cfg.data_seed if cfg.data_seed is not None else cfg.seed,
        )


@dataclass
class _Run:
    """One run's working set: built by `Distiller._setup`, used by the step loop and the evaluations."""

    student: Student
    tokenizer: PairTokenizer
    data: TrainingData
    heldout: TrainingData | None  # rank 0 only
    evaluator: NanoEvaluator | None  # rank 0 with an eval dataset only
    schedule: Schedule
    attention: str  # the attention backend of every training forward
    model: CrossEncoderModel
    ddp_model: torch.nn.Module  # `model`, wrapped in DDP when several processes train
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    log: dict[str, Any] = field(default_factory=lambda: {"history": [], "evals": []})
    start_step: int = 0


class Distiller:
    """One run, by phase: `_setup` (inputs, output directory, data, model, optimizer, resume),
    `_train` (the step loop, with `_evaluate` and `_save_checkpoint` every `eval_interval`),
    `_finish` (the best checkpoint becomes the output model).

    The student is the Distiller's own: the training attention backend is chosen once in
    `_setup` and passed to every training forward; evaluation lends the model, in eval mode,
    to a `Reranker` that uses it as given.
    """

    def __init__(self, config: DistillConfig):
        self.config = config
        if config.loss not in LOSSES:
            raise ValueError(f"unknown loss {config.loss!r}; choose one of {', '.join(LOSSES)}")
        if config.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if config.max_steps is not None and config.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {config.max_steps}")
        if not (0.0 < config.eval_every <= 1.0):
            raise ValueError(f"eval_every must be a fraction in (0, 1], got {config.eval_every}")
        if config.keep_best < 1:
            raise ValueError(f"keep_best must be at least 1, got {config.keep_best}")
        self.output_dir = Path(config.output_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if config.device:
            self.device = torch.device(config.device)
        else:
            self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device(f"cuda:{local_rank}")
        self.use_bf16 = config.precision == "bf16" or (
            config.precision == "auto" and auto_dtype(self.device) == torch.bfloat16
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def run(self) -> dict[str, Any]:
        started_dist = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            started_dist = True
        try:
            return self._run()
        finally:
            if started_dist:
                dist.destroy_process_group()

    def _run(self) -> dict[str, Any]:
        run = self._setup()
        info = self._describe(run)
        logger.info("distilling: %s", info)
        self._train(run)
        return self._finish(run, info)

    # --- setup: inputs, output directory, data, model, optimizer, resume --------------------

    def _setup(self) -> _Run:
        """Everything the step loop needs, restored from the last checkpoint when there is one."""
        cfg = self.config
        student, tokenizer, train_dir, heldout_dir, evaluator = self._prepare()
        batch_size = cfg.batch_size if cfg.batch_size is not None else student.defaults.global_batch_size
        if batch_size < self.world:
            raise ValueError(f"batch_size {batch_size} is smaller than the {self.world} processes")
        self._claim_output_dir()
        data, heldout = self._load_data(train_dir, heldout_dir, tokenizer)
        schedule = Schedule.plan(cfg, student.defaults, len(data), batch_size, self.device)
        model = student.model.to(self.device).train()
        optimizer, scheduler = self._optimizer(model, schedule)
        run = _Run(
            student=student,
            tokenizer=tokenizer,
            data=data,
            heldout=heldout,
            evaluator=evaluator,
            schedule=schedule,
            attention=default_backend(self.device, torch.bfloat16 if self.use_bf16 else torch.float32),
            model=model,
            ddp_model=model,
            optimizer=optimizer,
            scheduler=scheduler,
        )
        self._resume(run)
        if self.world > 1:
            run.ddp_model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        return run

    def _prepare(self) -> tuple[Student, PairTokenizer, Path, Path | None, NanoEvaluator | None]:
        """Everything that can fail on bad input, before any long work."""
        cfg = self.config
        train_dir, heldout_dir = resolve_train_dirs(cfg.train, cfg.heldout)
        for file in parquet_files(train_dir):
            check_columns(pq.read_schema(file), TRAIN_COLUMNS, file, "distill")
        torch.manual_seed(cfg.seed)
        student = build_student(cfg.student, cfg.init_encoder, cfg.keep_layers, cfg.tokenizer, seed=cfg.seed)
        evaluator = None
        if cfg.eval_dataset is not None and self.is_main:
            from .callbacks import NanoEvaluator  # scipy and the evaluation stack, only when evaluating

            evaluator = NanoEvaluator(
                cfg.eval_dataset,
                cfg.eval_split,
                cfg.eval_queries,
                cfg.eval_max_corpus,
                cfg.eval_top_k,
                seed=cfg.seed,
            )
        elif cfg.eval_dataset is not None:
            load_beir(cfg.eval_dataset, cfg.eval_split)  # fail on every rank alike
        limit = student.model.encoder.config.max_position_embeddings
        max_length = min(cfg.max_length, limit)
        tokenizer = PairTokenizer.from_dir(
            student.tokenizer_dir, max_length, student.model.uses_token_type_ids
        )
        return student, tokenizer, train_dir, heldout_dir, evaluator

    def _claim_output_dir(self) -> None:
        """Refuse an output directory that holds a run with other settings; record this run's."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.output_dir / CONFIG_FILE
        if config_path.is_file():
            previous = json.loads(config_path.read_text(encoding="utf-8"))
            if previous != self.config.resume_key():
                raise ValueError(
                    f"{self.output_dir} holds a run with other settings (see {config_path}); "
                    "rerun with the same arguments to resume, or choose a new output directory"
                )
        self._barrier()
        if self.is_main:
            config_path.write_text(json.dumps(self.config.resume_key(), indent=2) + "\n", encoding="utf-8")

    def _load_data(
        self, train_dir: Path, heldout_dir: Path | None, tokenizer: PairTokenizer
    ) -> tuple[TrainingData, TrainingData | None]:
        cfg = self.config
        data = load_pairs(train_dir, tokenizer)
        if len(data) == 0:
            raise ValueError(f"{train_dir} holds no training pairs")
        heldout = (
            load_pairs(heldout_dir, tokenizer, cfg.heldout_max_pairs, cfg.seed)
            if heldout_dir and self.is_main
            else None
        )
        return data, heldout

    def _optimizer(
        self, model: CrossEncoderModel, schedule: Schedule
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """AdamW (no weight decay on biases and norms), 3% linear warmup then linear decay."""
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        lr = schedule.learning_rate
        try:  # the fused kernel is ~10x faster on CPU; same update rule
            optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        factor = linear_schedule(schedule.warmup_steps, schedule.total_steps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def _resume(self, run: _Run) -> None:
        """Continue from the last checkpoint: weights, optimizer, scheduler and log."""
        checkpoints = _checkpoint_dirs(self.output_dir)
        if not checkpoints:
            return
        step, path = checkpoints[-1]
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.log = state["log"]
        run.start_step = step
        logger.info("resuming from %s (step %d of %d)", path, step, run.schedule.total_steps)

    def _describe(self, run: _Run) -> dict[str, Any]:
        """The run's settings as logged and written to the training log."""
        schedule = run.schedule
        return {
            "student": run.student.description,
            "learning_rate": schedule.learning_rate,
            "global_batch_size": schedule.batch_size,
            "total_steps": schedule.total_steps,
            "warmup_steps": schedule.warmup_steps,
            "eval_interval": schedule.eval_interval,
            "train_pairs": len(run.data),
            "heldout_pairs": len(run.heldout) if run.heldout is not None else 0,
            "world_size": self.world,
            "bf16": self.use_bf16,
            "device": str(self.device),
            "attention_backend": run.attention,
            "provenance": run.data.provenance,
            "first_stage_ndcg@10": run.evaluator.first_stage_ndcg if run.evaluator else None,
        }

    # --- the step loop ------------------------------------------------------------------------

    def _train(self, run: _Run) -> None:
        """Steps from the resumed one to the last; an evaluation and a checkpoint every `eval_interval`."""
        schedule = run.schedule
        if run.start_step == 0 and self.config.eval_at_start and not run.log["evals"]:
            self._evaluate(run, 0)
        started = time.perf_counter()
        progress = tqdm(
            total=schedule.total_steps,
            initial=run.start_step,
            desc="Distilling",
            unit="step",
            disable=not self.is_main,
        )
        for step in range(run.start_step, schedule.total_steps):
            loss = self._step(run, step)
            done = step + 1
            entry = {
                "step": done,
                "loss": loss,
                "lr": run.optimizer.param_groups[0]["lr"],
                "epoch": done / schedule.steps_per_epoch,
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
            run.log["history"].append(entry)
            progress.update(1)
            progress.set_postfix(loss=f"{entry['loss']:.4g}", lr=f"{entry['lr']:.2e}")
            if done % schedule.eval_interval == 0 or done == schedule.total_steps:
                self._evaluate(run, done)
                if self.is_main:
                    self._save_checkpoint(run, done)
                self._barrier()
        progress.close()

    def _step(self, run: _Run, step: int) -> float:
        """One optimizer step on the global batch of `step`; returns its mean per-pair loss."""
        cfg, schedule = self.config, run.schedule
        indices = global_batch(run.data, step, schedule.batch_size, schedule.data_seed, cfg.loss)
        local = split_for_rank(indices, run.data.group, self.rank, self.world, cfg.loss)
        loss_sum = self._accumulate_gradients(run, local, indices)
        if cfg.max_grad_norm and cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(run.ddp_model.parameters(), cfg.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        if self.world > 1:
            dist.all_reduce(loss_sum)
        return float(loss_sum) / len(indices)

    def _accumulate_gradients(self, run: _Run, local: np.ndarray, indices: np.ndarray) -> torch.Tensor:
        """Forward and backward this process's share in micro-batches; returns its summed per-pair loss."""
        loss = self.config.loss
        micro = micro_batches(run.data, local, run.schedule.micro_batch_tokens, loss)
        dummy = (
            not micro
        )  # this process got no pairs: run one pair with zero weight to join the gradient sync
        if dummy:
            micro = [indices[:1]]
        loss_sum = torch.zeros((), dtype=torch.float64)
        weight = 0.0 if dummy else self.world / len(indices)  # DDP averages over processes; see module doc
        for position, chunk in enumerate(micro):
            batch = pack(run.data.encoded, chunk).to(self.device)
            teacher = torch.from_numpy(run.data.teacher[chunk]).to(self.device)
            group = torch.from_numpy(run.data.group[chunk]).to(self.device)
            last = position == len(micro) - 1
            ddp = run.ddp_model  # a DistributedDataParallel when several processes train
            with ddp.no_sync() if (isinstance(ddp, DistributedDataParallel) and not last) else nullcontext():
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                    logits = run.ddp_model(batch, attention=run.attention)
                per_pair = per_pair_loss(loss, logits.float(), teacher, group)
                (per_pair.sum() * weight).backward()
            if not dummy:
                loss_sum += per_pair.detach().sum().double().cpu()
        return loss_sum

    # --- evaluation and checkpoints -----------------------------------------------------------

    def _evaluate(self, run: _Run, step: int) -> None:
        """Rank 0 measures the student at `step` and appends the record to the log."""
        if not self.is_main:
            return
        run.model.eval()
        record = {"step": step, **self._measure(run)}
        run.model.train()
        run.log["evals"].append(record)
        logger.info("eval at step %d: %s", step, record)

    @torch.no_grad()
    def _measure(self, run: _Run) -> dict[str, float]:
        from .callbacks import heldout_metrics  # scipy, only when evaluating

        # Lent as is (fp32, on the training device); no autocast here, so the Reranker's default
        # backend for fp32 applies, not the training one (flash kernels need half precision).
        reranker = Reranker(run.model, run.tokenizer)
        out: dict[str, float] = {}
        if run.heldout is not None:
            scores = reranker.predict_encoded(run.heldout.encoded, show_progress_bar=False)
            out.update(heldout_metrics(scores, run.heldout.teacher, run.heldout.query_ids))
        if run.evaluator is not None:
            out["ndcg@10"] = run.evaluator(reranker)
        return out

    def _selection_score(self, record: dict[str, float]) -> float:
        if "ndcg@10" in record:
            return record["ndcg@10"]
        if "heldout_spearman" in record and self.config.loss == "margin-mse":
            # margin-MSE fixes only score differences within a query, so the pointwise MSE
            # says nothing; the within-query agreement with the teacher's order does
            return record["heldout_spearman"]
        if "heldout_mse" in record:
            return -record["heldout_mse"]
        return float(record["step"])  # nothing measured: the latest is the best

    def _save_model(self, model, tokenizer_dir: Path, out: Path) -> None:
        save_modular(model, tokenizer_dir, out, max_length=self.config.max_length)

    def _save_checkpoint(self, run: _Run, step: int) -> None:
        root = self.output_dir / CHECKPOINT_DIR
        root.mkdir(parents=True, exist_ok=True)
        log = run.log
        state = {
            "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "log": log,
            "step": step,
        }

        def write(tmp: Path) -> None:
            self._save_model(run.model, run.student.tokenizer_dir, tmp)
            torch.save(state, tmp / STATE_FILE)
            record = next((r for r in log["evals"] if r["step"] == step), {"step": step})
            (tmp / "metrics.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

        _atomic_dir(root / f"step-{step:07d}", write)
        self._prune_checkpoints(log)

    def _prune_checkpoints(self, log: dict[str, Any]) -> None:
        """Keep the best `keep_best` by the selection metric, plus the latest (for resuming)."""
        saved = dict(_checkpoint_dirs(self.output_dir))
        scored = {r["step"]: self._selection_score(r) for r in log["evals"] if r["step"] in saved}
        ranked = sorted(saved, key=lambda s: (scored.get(s, float("-inf")), s), reverse=True)
        keep = set(ranked[: self.config.keep_best]) | {max(saved)}
        for s, path in saved.items():
            if s not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # --- the end: the best checkpoint becomes the output ----------------------------------

    def _best_checkpoint(self, log) -> Path:
        saved = dict(_checkpoint_dirs(self.output_dir))
        records = [r for r in log["evals"] if r["step"] in saved]
        # Highest score; ties go to the later step.
        best = max(records, key=lambda r: (self._selection_score(r), r["step"]))
        return saved[best["step"]]

    def _finish(self, run: _Run, info: dict[str, Any]) -> dict[str, Any]:
        """Rank 0 saves the best checkpoint's weights as the output model and writes the log and plot."""
        result = {**info, "complete": True}
        if self.is_main:
            best = self._best_checkpoint(run.log)
            final_state = torch.load(best / STATE_FILE, map_location="cpu", weights_only=False)
            run.model.load_state_dict(final_state["model"])
            self._save_model(run.model, run.student.tokenizer_dir, self.output_dir)
            result.update(
                best_checkpoint=str(best),
                best_step=int(best.name[5:]),
                history=run.log["history"],
                evals=run.log["evals"],
            )
            result["config"] = asdict(self.config)
            (self.output_dir / LOG_FILE).write_text(
                json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8"
            )
            plot_loss_curve(result, self.output_dir / "loss_curve.png")
        self._barrier()
        return result


def distill(config: DistillConfig) -> dict[str, Any]:
    """Run (or resume) a distillation; returns the training log (rank 0) or a summary (other ranks)."""
    return Distiller(config).run()
