"""Parquet tables of the distillation pipeline: schemas, provenance, atomic shard writes.

Every step writes a directory of Parquet shards (`part-00000.parquet`, ...) plus a
`manifest.json`. Every row carries provenance columns saying where it came from:

    dataset      the BEIR dataset directory's name (or the user's label)
    split        the qrels split the queries come from
    first_stage  bm25 | dense | hybrid (how candidates were mined)
    teacher      the teacher that scored the pair ("" before scoring)
    created_at   UTC ISO-8601 time the row's shard was written

Shards are written to a temporary name and renamed, so a killed run never leaves a
half-written shard that a restart would mistake for a finished one. A resumable step's
output (`ResumableShards`) keeps those shards when rerun with the settings its manifest pins.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_COLUMNS = ("dataset", "split", "first_stage", "teacher", "created_at")

# Columns each step needs from its input (beyond provenance, which is carried through).
CANDIDATE_COLUMNS = ("query_id", "query", "doc_id", "document", "label", "first_stage_rank")
SCORED_COLUMNS = (*CANDIDATE_COLUMNS, "teacher_score")
TRAIN_COLUMNS = ("query_id", "query", "doc_id", "document", "teacher_score")

SHARD_PATTERN = "part-{:05d}.parquet"
MANIFEST = "_manifest.json"  # leading underscore: pyarrow and Ray skip it when reading the directory


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def shard_path(directory: Path, index: int) -> Path:
    return directory / SHARD_PATTERN.format(index)


def with_provenance(table: pa.Table, provenance: dict[str, str]) -> pa.Table:
    """Set (or overwrite) the provenance columns of `table` to constant values."""
    for name in PROVENANCE_COLUMNS:
        if name not in provenance:
            continue
        column = pa.array([str(provenance[name])] * table.num_rows, type=pa.string())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table


def write_atomic(table: pa.Table, path: Path) -> Path:
    """Write one Parquet file so that it either exists complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_json_atomic(value: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def require_same_settings(directory: Path, settings: dict[str, Any], holds: str) -> dict[str, Any] | None:
    """The manifest already in `directory`, refusing to resume a run made with other settings."""
    existing = read_manifest(directory)
    if existing is not None and existing.get("settings") != settings:
        raise ValueError(
            f"{directory} holds {holds} from a run with other settings ({existing.get('settings')}); "
            "resume with the same arguments, or choose a new output directory"
        )
    return existing


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    return write_json_atomic(manifest, Path(directory) / MANIFEST)


def write_shard(table: pa.Table, provenance: dict[str, str], path: Path) -> Path:
    """Write one shard atomically, its provenance columns set and stamped with the time it was written."""
    return write_atomic(with_provenance(table, {**provenance, "created_at": utc_now()}), path)


@dataclass(frozen=True)
class ResumableShards:
    """A step's output of `num_shards` shards that a restart keeps: its manifest pins the settings
    that made them (a rerun with other settings is refused) and says whether every shard is written."""

    directory: Path
    settings: dict[str, Any]
    holds: str  # what the shards hold, for the refusal message ("candidates", "scores")
    num_shards: int
    facts: dict[str, Any] = field(default_factory=dict)  # more manifest fields, such as the pair count

    def start(self) -> list[int]:
        """Refuse an output made with other settings, mark it unfinished; the shards still to write."""
        require_same_settings(self.directory, self.settings, self.holds)
        self._write_manifest(complete=False)
        return [index for index in range(self.num_shards) if not self.shard_path(index).is_file()]

    def shard_path(self, index: int) -> Path:
        return shard_path(self.directory, index)

    def write_shard(self, index: int, table: pa.Table, provenance: dict[str, str]) -> Path:
        return write_shard(table, provenance, self.shard_path(index))

    def finish(self) -> None:
        self._write_manifest(complete=True)

    def _write_manifest(self, complete: bool) -> None:
        manifest = {
            "settings": self.settings,
            "num_shards": self.num_shards,
            **self.facts,
            "complete": complete,
        }
        write_manifest(self.directory, manifest)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a step's output: a single file, or `*.parquet` in a directory (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} does not exist: expected a directory of Parquet shards or a .parquet file"
        )
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{path} holds no .parquet files; did the previous step finish?")
    return files


def check_columns(schema: pa.Schema, required: Sequence[str], where: str | Path, step: str) -> None:
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise ValueError(
            f"{where} lacks column(s) {missing} needed by `{step}` (it has {schema.names}); "
            f"expected the output of the previous step, with columns {list(required)}"
        )


def read_table(
    path: str | Path, required: Sequence[str], step: str, columns: Iterable[str] | None = None
) -> pa.Table:
    """Read and concatenate the shards of `path`, checking `required` columns on every file first."""
    files = parquet_files(path)
    for file in files:
        check_columns(pq.read_schema(file), required, file, step)
    wanted = list(columns) if columns is not None else None
    tables = [pq.read_table(file, columns=wanted) for file in files]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise ValueError(f"{path} holds no rows: nothing for `{step}` to do")
    return table


def count_rows(path: str | Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(path))


def provenance_summary(table: pa.Table) -> dict[str, str | list[str]]:
    """Each provenance column's value, or its sorted distinct values when the rows come from several
    sources (a training set merged from several datasets); absent columns are left out."""
    out: dict[str, str | list[str]] = {}
    for name in PROVENANCE_COLUMNS:
        if name not in table.column_names or not table.num_rows:
            continue
        values = sorted({str(value or "") for value in table.column(name).unique().to_pylist()})
        out[name] = values[0] if len(values) == 1 else values
    return out
