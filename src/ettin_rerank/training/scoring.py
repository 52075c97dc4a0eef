"""Step 2, `score-teacher`: the teacher's raw logit for every candidate pair.

The input rows (in file order) are cut into fixed shards of `shard_size` pairs; shard
k covers input rows [k * shard_size, (k + 1) * shard_size). Each output shard is
written atomically once all its pairs are scored, with the global `pair_index` of
every row. A killed run restarted with the same arguments scores only the missing
shards, so the finished output holds every pair exactly once.

Backends (one runner each in `_RUNNERS`):
- `local`: in this process (`workers=1`) or a pool of `workers` processes, one teacher each.
- `ray`: Ray Data `map_batches` over an actor pool (one teacher per actor); rows of a
  shard are sorted by length, so each batch holds pairs of similar length.
Every teacher is a `scoring.PairScorer`; its scores are checked with `scoring.checked_scores`.

Both backends score a shard in the same length-sorted chunks of `batch_pairs` pairs.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from ..config.training import TEACHER_BACKENDS, TEACHER_SCORING
from ..scoring import PairScorer, checked_scores
from .io import ResumableShards, check_columns, parquet_files, shard_path, write_shard
from .teacher import load_teacher

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("query_id", "query", "doc_id", "document")


@dataclass(frozen=True)
class TeacherSpec:
    """How to load the teacher; picklable, so workers and Ray actors load their own copy."""

    name_or_path: str
    device: str = "cpu"
    dtype: str = "float32"
    max_length: int | None = None
    batch_tokens: int | None = None

    def load(self) -> PairScorer:
        return load_teacher(self.name_or_path, self.device, self.dtype, self.max_length, self.batch_tokens)


class CandidateRows:
    """Random access by global row range over a directory of Parquet shards."""

    def __init__(self, path: str | Path):
        self.files = parquet_files(path)
        for file in self.files:
            check_columns(pq.read_schema(file), REQUIRED_COLUMNS, file, "score-teacher")
        self.counts = [pq.ParquetFile(f).metadata.num_rows for f in self.files]
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self._cache: tuple[int, pa.Table] | None = None

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    def fingerprint(self) -> list[list]:
        return [[f.name, c] for f, c in zip(self.files, self.counts, strict=True)]

    def _file(self, index: int) -> pa.Table:
        if self._cache is None or self._cache[0] != index:
            self._cache = (index, pq.read_table(self.files[index]))
        return self._cache[1]

    def slice(self, start: int, stop: int) -> pa.Table:
        parts = []
        for index in range(len(self.files)):
            lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
            if hi <= start or lo >= stop:
                continue
            table = self._file(index)
            parts.append(table.slice(max(start, lo) - lo, min(stop, hi) - max(start, lo)))
        table = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
        return table.append_column("pair_index", pa.array(np.arange(start, stop, dtype=np.int64)))


def length_sorted_chunks(queries, documents, batch_pairs: int) -> Iterator[np.ndarray]:
    """Row indices by decreasing text length (stable), in chunks of `batch_pairs`."""
    lengths = np.fromiter((len(q) + len(d) for q, d in zip(queries, documents, strict=True)), dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), batch_pairs):
        yield order[start : start + batch_pairs]


def score_table(teacher: PairScorer, table: pa.Table, batch_pairs: int) -> np.ndarray:
    queries = table.column("query").to_pylist()
    documents = table.column("document").to_pylist()
    scores = np.empty(len(queries), dtype=np.float32)
    for chunk in length_sorted_chunks(queries, documents, batch_pairs):
        pairs = [(queries[i], documents[i]) for i in chunk]
        scores[chunk] = checked_scores(teacher.score_pairs(pairs), len(pairs), f"teacher {teacher.name}")
    return scores


def finish_shard(table: pa.Table, scores: np.ndarray, teacher_name: str, path: Path) -> None:
    table = table.append_column("teacher_score", pa.array(scores.astype(np.float32), type=pa.float32()))
    write_shard(table, {"teacher": teacher_name}, path)


@dataclass
class ScoringJob:
    """The shards still to score and how; what every backend runner reads."""

    rows: CandidateRows
    candidates_dir: Path
    output_dir: Path
    spec: TeacherSpec
    shard_size: int
    batch_pairs: int
    workers: int
    teacher: PairScorer | None  # loaded here to fail early; runners that load their own drop it
    ray_address: str | None = None
    ray_window: int | None = None

    @property
    def teacher_name(self) -> str:
        return self.spec.name_or_path  # the provenance column: the teacher as it was asked for

    def settings(self) -> dict:
        """What a rerun must repeat to resume this output (the manifest pins it)."""
        return {
            "step": "score-teacher",
            "candidates": str(self.candidates_dir.resolve()),
            "inputs": self.rows.fingerprint(),
            "teacher": self.teacher_name,
            "shard_size": self.shard_size,
            "max_length": self.spec.max_length,
            "dtype": self.spec.dtype,
        }

    def bounds(self, shard: int) -> tuple[int, int]:
        return shard * self.shard_size, min((shard + 1) * self.shard_size, self.rows.num_rows)


# --- in this process ------------------------------------------------------------------------


def _score_in_process(job: ScoringJob, todo: list[int]) -> None:
    teacher = job.teacher if job.teacher is not None else job.spec.load()  # only other runners drop it
    for n, shard in enumerate(todo, start=1):
        table = job.rows.slice(*job.bounds(shard))
        scores = score_table(teacher, table, job.batch_pairs)
        finish_shard(table, scores, job.teacher_name, shard_path(job.output_dir, shard))
        logger.info("scored shard %d (%d/%d to do)", shard, n, len(todo))


# --- local process pool -------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(spec: TeacherSpec, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["teacher"] = spec.load()


def _score_shard_in_worker(
    candidates: str, start: int, stop: int, batch_pairs: int, teacher_name: str, path: str
) -> int:
    teacher = _WORKER["teacher"]
    table = CandidateRows(candidates).slice(start, stop)
    finish_shard(table, score_table(teacher, table, batch_pairs), teacher_name, Path(path))
    return stop - start


def _score_in_process_pool(job: ScoringJob, todo: list[int]) -> None:
    job.teacher = None  # each worker loads its own; free this process's copy first
    threads = max(1, (os.cpu_count() or 1) // job.workers)
    with ProcessPoolExecutor(
        job.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(job.spec, threads),
    ) as pool:
        futures = [
            pool.submit(
                _score_shard_in_worker,
                str(job.candidates_dir),
                *job.bounds(shard),
                job.batch_pairs,
                job.teacher_name,
                str(shard_path(job.output_dir, shard)),
            )
            for shard in todo
        ]
        for future in as_completed(futures):
            future.result()


# --- Ray ------------------------------------------------------------------------------------


class RayTeacherActor:
    """One teacher per actor; scores a batch of rows, returns (pair_index, teacher_score)."""

    def __init__(self, spec: TeacherSpec, threads: int = 1):
        torch.set_num_threads(max(1, threads))
        self.teacher = spec.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = list(zip(batch["query"].tolist(), batch["document"].tolist(), strict=True))
        scores = checked_scores(self.teacher.score_pairs(pairs), len(pairs), f"teacher {self.teacher.name}")
        return {"pair_index": np.asarray(batch["pair_index"], dtype=np.int64), "teacher_score": scores}


def _score_on_ray(job: ScoringJob, todo: list[int]) -> None:
    import ray

    job.teacher = None  # each actor loads its own; free this process's copy first
    started = False
    if not ray.is_initialized():
        ray.init(address=job.ray_address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        window = job.ray_window or max(1, 2 * job.workers)
        for start in range(0, len(todo), window):
            _score_window_ray(job, todo[start : start + window])
            logger.info("scored shards %s", todo[start : start + window])
    finally:
        if started:
            ray.shutdown()


def _score_window_ray(job: ScoringJob, shards: list[int]) -> None:
    import ray.data

    tables = {}
    blocks = []
    for shard in shards:
        table = job.rows.slice(*job.bounds(shard))
        tables[shard] = table
        # Sort the shard's rows by length so each batch holds pairs of similar length.
        lengths = pc.add(pc.utf8_length(table.column("query")), pc.utf8_length(table.column("document")))
        order = np.argsort(-np.asarray(lengths), kind="stable")
        blocks.append(table.select(["query", "document", "pair_index"]).take(pa.array(order)))
    dataset = ray.data.from_arrow(blocks)
    scored = dataset.map_batches(
        RayTeacherActor,
        fn_constructor_kwargs={"spec": job.spec, "threads": 1},
        batch_size=job.batch_pairs,
        batch_format="numpy",
        concurrency=job.workers,
        num_cpus=1,
    )
    scores: dict[int, np.ndarray] = {s: np.full(tables[s].num_rows, np.nan, dtype=np.float32) for s in shards}
    for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
        index = np.asarray(batch["pair_index"])
        shard_of = index // job.shard_size
        for shard in np.unique(shard_of):
            mask = shard_of == shard
            scores[int(shard)][index[mask] - int(shard) * job.shard_size] = batch["teacher_score"][mask]
    for shard in shards:
        if np.isnan(scores[shard]).any():
            raise RuntimeError(
                f"Ray returned no score for {int(np.isnan(scores[shard]).sum())} pairs of shard {shard}"
            )
        finish_shard(tables[shard], scores[shard], job.teacher_name, shard_path(job.output_dir, shard))


# --- entry point ----------------------------------------------------------------------------

# Who scores the missing shards: `local` with one worker stays in this process.
_RUNNERS: dict[str, Callable[[ScoringJob, list[int]], None]] = {
    "in-process": _score_in_process,
    "process-pool": _score_in_process_pool,
    "ray": _score_on_ray,
}


def _runner_for(backend: str, workers: int) -> str:
    if backend == "ray":
        return "ray"
    return "in-process" if workers == 1 else "process-pool"


def score_teacher(  # noqa: PLR0913 (its parameters are the `score-teacher` command's flags)
    candidates_dir: str | Path,
    teacher: str | Path,
    output_dir: str | Path,
    backend: str = TEACHER_SCORING.backend,
    workers: int = TEACHER_SCORING.workers,
    shard_size: int = TEACHER_SCORING.shard_size,
    batch_pairs: int = TEACHER_SCORING.batch_pairs,
    device: str = TEACHER_SCORING.device,
    dtype: str = TEACHER_SCORING.dtype,
    max_length: int | None = TEACHER_SCORING.max_length,
    batch_tokens: int | None = TEACHER_SCORING.batch_tokens,
    ray_address: str | None = TEACHER_SCORING.ray_address,
    ray_window: int | None = None,
) -> Path:
    """Score every candidate pair with `teacher`; returns `output_dir`. Resumable (see module doc)."""
    if backend not in TEACHER_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(TEACHER_BACKENDS)}")
    if workers < 1 or shard_size < 1 or batch_pairs < 1:
        raise ValueError("workers, shard_size and batch_pairs must be at least 1")
    rows = CandidateRows(candidates_dir)  # checks columns before anything slow
    if rows.num_rows == 0:
        raise ValueError(f"{candidates_dir} holds no candidate pairs: nothing to score")
    spec = TeacherSpec(str(teacher), device, dtype, max_length, batch_tokens)
    job = ScoringJob(
        rows=rows,
        candidates_dir=Path(candidates_dir),
        output_dir=Path(output_dir),
        spec=spec,
        shard_size=shard_size,
        batch_pairs=batch_pairs,
        workers=workers,
        teacher=spec.load(),  # a teacher that cannot be loaded fails here, before any scoring
        ray_address=ray_address,
        ray_window=ray_window,
    )
    output = ResumableShards(
        job.output_dir,
        job.settings(),
        "scores",
        num_shards=math.ceil(rows.num_rows / shard_size),
        facts={"pairs": rows.num_rows},
    )
    todo = output.start()
    if len(todo) < output.num_shards:
        logger.info(
            "resuming: %d of %d shards already scored", output.num_shards - len(todo), output.num_shards
        )
    if todo:
        _RUNNERS[_runner_for(backend, workers)](job, todo)
    verify_scored(output, rows.num_rows)
    output.finish()
    return job.output_dir


def verify_scored(output: ResumableShards, num_pairs: int) -> None:
    """Every input pair appears exactly once across the shards."""
    seen = np.zeros(num_pairs, dtype=np.int32)
    for shard in range(output.num_shards):
        index = (
            pq.read_table(output.shard_path(shard), columns=["pair_index"]).column("pair_index").to_numpy()
        )
        np.add.at(seen, index, 1)
    if not np.all(seen == 1):
        raise RuntimeError(
            f"{output.directory}: {int((seen == 0).sum())} pairs unscored and {int((seen > 1).sum())} scored more than once"
        )
