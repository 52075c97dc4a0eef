"""Step 2, `score-teacher`: the teacher's raw logit for every candidate pair.

The input rows (in file order) are cut into fixed shards of `shard_size` pairs; shard
k covers input rows [k * shard_size, (k + 1) * shard_size). Each output shard is
written atomically once all its pairs are scored, with the global `pair_index` of
every row. A killed run restarted with the same arguments scores only the missing
shards, so the finished output holds every pair exactly once.

Backends:
- `local`: in this process (`workers=1`) or a pool of `workers` processes, one teacher each.
- `ray`: Ray Data `map_batches` over an actor pool (one teacher per actor); rows of a
  shard are sorted by length, so each batch holds pairs of similar length.

Both backends score a shard in the same length-sorted chunks of `batch_pairs` pairs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io import (
    MANIFEST,
    check_columns,
    parquet_files,
    require_same_settings,
    shard_path,
    utc_now,
    with_provenance,
    write_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")
REQUIRED_COLUMNS = ("query_id", "query", "doc_id", "document")


@dataclass(frozen=True)
class TeacherSpec:
    """How to load the teacher; picklable, so workers and Ray actors load their own copy."""

    name_or_path: str
    device: str = "cpu"
    dtype: str = "float32"
    max_length: int | None = None
    batch_tokens: int | None = None

    def load(self):
        from .teacher import load_teacher

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


def score_table(teacher, table: pa.Table, batch_pairs: int) -> np.ndarray:
    queries = table.column("query").to_pylist()
    documents = table.column("document").to_pylist()
    scores = np.empty(len(queries), dtype=np.float32)
    for chunk in length_sorted_chunks(queries, documents, batch_pairs):
        scores[chunk] = teacher.score([queries[i] for i in chunk], [documents[i] for i in chunk])
    if not np.all(np.isfinite(scores)):
        raise RuntimeError(f"teacher {teacher.name} returned non-finite scores; check the model and dtype")
    return scores


def finish_shard(table: pa.Table, scores: np.ndarray, teacher_name: str, path: Path) -> None:
    table = table.append_column("teacher_score", pa.array(scores.astype(np.float32), type=pa.float32()))
    write_atomic(with_provenance(table, {"teacher": teacher_name, "created_at": utc_now()}), path)


# --- local process pool -------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(spec: TeacherSpec, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["teacher"] = spec.load()


def _score_shard_in_worker(candidates: str, start: int, stop: int, batch_pairs: int, path: str) -> int:
    teacher = _WORKER["teacher"]
    table = CandidateRows(candidates).slice(start, stop)
    finish_shard(table, score_table(teacher, table, batch_pairs), teacher.name, Path(path))
    return stop - start


# --- Ray ------------------------------------------------------------------------------------


class RayTeacherActor:
    """One teacher per actor; scores a batch of rows, returns (pair_index, teacher_score)."""

    def __init__(self, spec: TeacherSpec, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.teacher = spec.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        scores = self.teacher.score(list(batch["query"]), list(batch["document"]))
        return {
            "pair_index": np.asarray(batch["pair_index"], dtype=np.int64),
            "teacher_score": scores.astype(np.float32),
        }


def _score_window_ray(
    rows: CandidateRows, shards, shard_size, spec, workers, batch_pairs, teacher_name, output_dir
) -> None:
    import ray.data

    tables = {}
    blocks = []
    for shard in shards:
        table = rows.slice(shard * shard_size, min((shard + 1) * shard_size, rows.num_rows))
        tables[shard] = table
        # Sort the shard's rows by length so each batch holds pairs of similar length.
        lengths = pc.add(pc.utf8_length(table.column("query")), pc.utf8_length(table.column("document")))
        order = np.argsort(-np.asarray(lengths), kind="stable")
        blocks.append(table.select(["query", "document", "pair_index"]).take(pa.array(order)))
    dataset = ray.data.from_arrow(blocks)
    scored = dataset.map_batches(
        RayTeacherActor,
        fn_constructor_kwargs={"spec": spec, "threads": 1},
        batch_size=batch_pairs,
        batch_format="numpy",
        concurrency=workers,
        num_cpus=1,
    )
    scores: dict[int, np.ndarray] = {s: np.full(tables[s].num_rows, np.nan, dtype=np.float32) for s in shards}
    for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
        index = np.asarray(batch["pair_index"])
        shard_of = index // shard_size
        for shard in np.unique(shard_of):
            mask = shard_of == shard
            scores[int(shard)][index[mask] - int(shard) * shard_size] = batch["teacher_score"][mask]
    for shard in shards:
        if np.isnan(scores[shard]).any():
            raise RuntimeError(
                f"Ray returned no score for {int(np.isnan(scores[shard]).sum())} pairs of shard {shard}"
            )
        finish_shard(tables[shard], scores[shard], teacher_name, shard_path(output_dir, shard))


# --- entry point ----------------------------------------------------------------------------


def score_teacher(
    candidates_dir: str | Path,
    teacher: str | Path,
    output_dir: str | Path,
    backend: str = "local",
    workers: int = 1,
    shard_size: int = 50_000,
    batch_pairs: int = 1024,
    device: str = "cpu",
    dtype: str = "float32",
    max_length: int | None = None,
    batch_tokens: int | None = None,
    ray_address: str | None = None,
    ray_window: int | None = None,
) -> Path:
    """Score every candidate pair with `teacher`; returns `output_dir`. Resumable (see module doc)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if workers < 1 or shard_size < 1 or batch_pairs < 1:
        raise ValueError("workers, shard_size and batch_pairs must be at least 1")
    output_dir = Path(output_dir)
    rows = CandidateRows(candidates_dir)  # checks columns before anything slow
    if rows.num_rows == 0:
        raise ValueError(f"{candidates_dir} holds no candidate pairs: nothing to score")
    spec = TeacherSpec(str(teacher), device, dtype, max_length, batch_tokens)
    local_teacher = spec.load()  # a teacher that cannot be loaded fails here, before any scoring
    teacher_name = str(teacher)

    settings = {
        "step": "score-teacher",
        "candidates": str(Path(candidates_dir).resolve()),
        "inputs": rows.fingerprint(),
        "teacher": teacher_name,
        "shard_size": shard_size,
        "max_length": max_length,
        "dtype": dtype,
    }
    require_same_settings(output_dir, settings, "scores")
    num_shards = math.ceil(rows.num_rows / shard_size)
    write_json_atomic(
        {"settings": settings, "num_shards": num_shards, "pairs": rows.num_rows, "complete": False},
        output_dir / MANIFEST,
    )
    todo = [s for s in range(num_shards) if not shard_path(output_dir, s).is_file()]
    if len(todo) < num_shards:
        logger.info("resuming: %d of %d shards already scored", num_shards - len(todo), num_shards)

    def bounds(shard: int) -> tuple[int, int]:
        return shard * shard_size, min((shard + 1) * shard_size, rows.num_rows)

    if todo and backend == "local" and workers == 1:
        for n, shard in enumerate(todo, start=1):
            table = rows.slice(*bounds(shard))
            finish_shard(
                table,
                score_table(local_teacher, table, batch_pairs),
                teacher_name,
                shard_path(output_dir, shard),
            )
            logger.info("scored shard %d (%d/%d to do)", shard, n, len(todo))
    elif todo and backend == "local":
        del local_teacher
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(spec, threads),
        ) as pool:
            futures = [
                pool.submit(
                    _score_shard_in_worker,
                    str(candidates_dir),
                    *bounds(s),
                    batch_pairs,
                    str(shard_path(output_dir, s)),
                )
                for s in todo
            ]
            for future in as_completed(futures):
                future.result()
    elif todo:
        del local_teacher
        import ray

        started = False
        if not ray.is_initialized():
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
            started = True
        try:
            window = ray_window or max(1, 2 * workers)
            for start in range(0, len(todo), window):
                _score_window_ray(
                    rows,
                    todo[start : start + window],
                    shard_size,
                    spec,
                    workers,
                    batch_pairs,
                    teacher_name,
                    output_dir,
                )
                logger.info("scored shards %s", todo[start : start + window])
        finally:
            if started:
                ray.shutdown()

    verify_scored(output_dir, num_shards, rows.num_rows)
    write_json_atomic(
        {"settings": settings, "num_shards": num_shards, "pairs": rows.num_rows, "complete": True},
        output_dir / MANIFEST,
    )
    return output_dir


def verify_scored(output_dir: Path, num_shards: int, num_pairs: int) -> None:
    """Every input pair appears exactly once across the shards."""
    seen = np.zeros(num_pairs, dtype=np.int32)
    for shard in range(num_shards):
        index = (
            pq.read_table(shard_path(output_dir, shard), columns=["pair_index"])
            .column("pair_index")
            .to_numpy()
        )
        np.add.at(seen, index, 1)
    if not np.all(seen == 1):
        raise RuntimeError(
            f"{output_dir}: {int((seen == 0).sum())} pairs unscored and {int((seen > 1).sum())} scored more than once"
        )
