"""The defaults of the distillation recipe's first three steps: `mine`, `score-teacher`, `select`
(`training/mining.py`, `training/scoring.py`, `training/selection.py`). The fourth is `distill.py`."""

from __future__ import annotations

from dataclasses import dataclass

TEACHER_BACKENDS = ("local", "ray")  # where teacher scoring runs: local processes or Ray actors


@dataclass(frozen=True)
class MiningOptions:
    """What `mine_candidates` decides when a caller names nothing (its parameters' defaults)."""

    split: str = "train"  # qrels split whose queries are mined
    depth: int = 2048  # first-stage candidates per query
    max_queries: int | None = None  # a seeded random subset of the judged queries; None: all
    queries_per_shard: int = 1000  # the unit of resuming
    seed: int = 0
    device: str | None = "cpu"  # of a dense first stage


@dataclass(frozen=True)
class TeacherScoringOptions:
    """What `score_teacher` decides when a caller names nothing (its parameters' defaults)."""

    backend: str = "local"  # a TEACHER_BACKENDS entry
    workers: int = 1  # processes (local) or Ray actors, one teacher each
    shard_size: int = 50_000  # pairs per output shard (the unit of resuming)
    batch_pairs: int = 1024  # pairs per length-sorted scoring batch
    device: str = "cpu"
    dtype: str = "float32"  # of the teacher's encoder; scores come back fp32
    max_length: int | None = None  # tokens per pair; None: the teacher's own limit
    batch_tokens: int | None = None  # real tokens per forward pass; None: the engine's
    ray_address: str | None = None  # None: RAY_ADDRESS or a local instance


@dataclass(frozen=True)
class SelectionOptions:
    """What `select_training_pairs` decides when a caller names nothing (its parameters' defaults)."""

    keep: int = 256  # candidates kept per query before the final draw
    per_query: int = 64  # pairs per query in the training set
    top_hard: int = 16  # the teacher's top candidates always kept
    medium_band: tuple[float, float] = (0.25, 0.75)  # rank quantiles of the kept list
    heldout_queries: int = 0  # queries set aside for the held-out loss
    seed: int = 12


MINING = MiningOptions()
TEACHER_SCORING = TeacherScoringOptions()
SELECTION = SelectionOptions()
