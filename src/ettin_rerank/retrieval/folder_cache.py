"""The kept index of a folder (or one file) searched directly, in the user's cache directory.

`search FOLDER` would otherwise read and index every file on every query. Instead each folder has
an entry, one per (absolute path, passage settings), under `cache_dir()/folders/`::

    <sha of the path>/<sha of the passage settings>/
        lock            what `fcntl.flock` holds while an entry is checked, updated or removed
        manifest.json   format, ettin-rerank version, folder, settings, the index's directory, and per
                        file: size, modification time (ns), its document ids or why it was skipped
        index-<token>/  a `SearchIndex` (`save`/`load`): the documents and their BM25 index

Opening walks the folder with `stat` only (the walk `read_folder` does: `list_folder`) and compares
each file's size and modification time with the manifest. Nothing changed: the saved index is
loaded and no file is read. Otherwise only new or changed files are read (`read_file`, the reading
`read_folder` does), deleted ones dropped, the others' documents taken from the saved index, BM25
rebuilt over the whole, and the entry saved. The documents and the `ReadReport` are those a fresh
`read_folder` gives, in the same order.

Never a wrong answer:
- a manifest of another format or ettin-rerank version (stale), of another folder, passage or BM25
  settings (foreign), or one that does not read back whole (corrupt: bad JSON, missing or truncated
  files, documents that do not match the manifest) is not used: the entry is rebuilt from scratch
  with one warning line;
- a file modified within `RACY_NS` of the walk is read again next time, since a second change in the
  same clock tick would keep its size and time;
- writers hold the entry's lock, save the index under a temporary name, `os.replace` it into place,
  then the manifest the same way: a process killed half-way leaves the previous entry whole.
When the cache directory cannot be written, the folder is searched without keeping its index.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..config.paths import cache_dir
from .beir import Document, load_corpus
from .bm25 import BM25Config
from .files import FileDocuments, FolderFile, PassageSettings, ReadReport, list_folder, read_files
from .first_stage import BM25FirstStage
from .index import SearchIndex
from .index_files import read_index_metadata, write_index_metadata
from .user_corpus import require_documents

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK = "lock"
INDEX_PREFIX = "index-"
TEMP_PREFIX = "tmp-"
TRASH_PREFIX = ".trash-"  # an entry being removed, out of the listing's way
RACY_NS = 2_000_000_000  # a file changed this close to the walk is read again (FAT's 2 s clock)
_REBUILT = "rebuilt it from the folder"
_MANIFEST_FIELDS = ("ettin_rerank", "folder", "passages", "bm25", "index", "files")


class CorruptCache(ValueError):
    """An entry that does not read back whole: it is rebuilt, never used."""


@dataclass(frozen=True)
class CachedFile:
    """What the manifest remembers of one file."""

    size: int
    mtime_ns: int
    documents: tuple[str, ...]  # its document ids, in order
    skipped: str | None  # why it was skipped (None: read)
    recheck: bool = False  # changed too close to the walk to trust its time: read it again

    def matches(self, file: FolderFile) -> bool:
        return not self.recheck and self.size == file.size and self.mtime_ns == file.mtime_ns

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"documents": list(self.documents)}

    @classmethod
    def from_dict(cls, record: Any) -> CachedFile:
        try:
            size, mtime_ns, documents = record["size"], record["mtime_ns"], record["documents"]
            skipped, recheck = record["skipped"], record.get("recheck", False)
        except (KeyError, TypeError, AttributeError) as error:
            raise CorruptCache(f"a file record is incomplete ({error!r})") from error
        if not (
            isinstance(size, int)
            and isinstance(mtime_ns, int)
            and isinstance(documents, list)
            and all(isinstance(doc_id, str) for doc_id in documents)
            and (skipped is None or isinstance(skipped, str))
            and isinstance(recheck, bool)
        ):
            raise CorruptCache(f"a file record has fields of the wrong type: {record!r:.200}")
        return cls(size, mtime_ns, tuple(documents), skipped, recheck)


@dataclass
class CacheOutcome:
    """What opening a folder through the cache did."""

    entry: Path
    state: str  # "built" (no entry yet), "loaded" (nothing changed), "updated", "rebuilt", "uncached"
    files_read: list[str] = field(default_factory=list)  # read from the folder this time
    files_dropped: list[str] = field(default_factory=list)  # in the entry, gone from the folder
    note: str | None = None  # why the entry was rebuilt, or could not be kept


@dataclass(frozen=True)
class CacheEntry:
    """One entry as `ettin-rerank cache` lists it; fields from its manifest are None when it does
    not read back (the next search rebuilds it)."""

    path: Path
    folder: str | None
    passages: dict[str, Any] | None
    files: int | None
    documents: int | None
    size_bytes: int
    updated: str | None  # ISO 8601, UTC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"path": str(self.path)}


def folders_dir() -> Path:
    """Where the folder entries live."""
    return cache_dir() / "folders"


def folder_path(path: str | Path) -> Path:
    """The absolute path an entry is keyed by. Symlinks are kept as named, as `read_folder` names
    files relative to the path it is given."""
    return Path(os.path.abspath(path))


def entry_dir(folder: str | Path, passages: PassageSettings) -> Path:
    folder_key = _digest(str(folder_path(folder)))
    settings_key = _digest(json.dumps(asdict(passages), sort_keys=True))
    return folders_dir() / folder_key / settings_key


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def open_folder_index(
    path: str | Path, passages: PassageSettings | None = None, show_progress: bool = False
) -> tuple[SearchIndex, CacheOutcome]:
    """The BM25 search index of the folder (or file) at `path`, kept up to date in its cache entry;
    `show_progress`: a bar over the bytes read."""
    folder = folder_path(path)
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist")
    passages = passages or PassageSettings()
    entry = entry_dir(folder, passages)
    try:
        lock = _acquire(entry)
    except OSError as error:
        note = f"cannot keep the index of {folder} in {folders_dir()} ({error}); searching without it"
        logger.warning("%s", note)
        opened = _open(folder, passages, entry, None, show_progress)
        opened.outcome.state, opened.outcome.note = "uncached", note
        return opened.index, opened.outcome
    try:
        return _update(folder, passages, entry, show_progress)
    except BaseException:
        if not (entry / MANIFEST).exists():  # nothing was kept (no documents, interrupted): no empty entry
            _remove_path(entry)
        raise
    finally:
        os.close(lock)


@dataclass
class _Opened:
    """The index of the folder as it is now, what it took, and the manifest's file records for it."""

    index: SearchIndex
    outcome: CacheOutcome
    records: dict[str, CachedFile]


def _update(
    folder: Path, passages: PassageSettings, entry: Path, show_progress: bool
) -> tuple[SearchIndex, CacheOutcome]:
    """Under the entry's lock: load it when nothing changed, else read what did and save."""
    problem = None
    try:
        manifest = _read_manifest(entry, folder, passages)
    except CorruptCache as error:
        manifest, problem = None, str(error)
    try:
        opened = _open(folder, passages, entry, manifest, show_progress)
    except CorruptCache as error:  # the manifest read, the index behind it did not
        problem = f"{entry} is corrupt: {error}"
        opened = _open(folder, passages, entry, None, show_progress)
    index, outcome = opened.index, opened.outcome
    if problem is not None:
        outcome.state, outcome.note = "rebuilt", f"search cache: {problem}; {_REBUILT}"
        logger.warning("%s", outcome.note)
    if outcome.state == "loaded":
        logger.info("loaded the kept index of %s (%d documents)", folder, len(index.corpus))
        return index, outcome
    try:
        _save(entry, folder, passages, index, opened.records)
    except OSError as error:
        outcome.note = f"cannot save the index of {folder} in {entry} ({error}); searched without keeping it"
        logger.warning("%s", outcome.note)
    logger.info(
        "%s the kept index of %s: %d files read, %d dropped, %d documents",
        outcome.state,
        folder,
        len(outcome.files_read),
        len(outcome.files_dropped),
        len(index.corpus),
    )
    return index, outcome


def _open(
    folder: Path,
    passages: PassageSettings,
    entry: Path,
    manifest: dict[str, Any] | None,
    show_progress: bool,
) -> _Opened:
    """The index of the folder as it is now, reading only the files `manifest` does not match.
    Raises `CorruptCache` when what the manifest names does not read back whole."""
    report = ReadReport()
    walked_at = time.time_ns()
    files = list_folder(folder, report)
    cached: dict[str, CachedFile] = manifest["files"] if manifest is not None else {}
    unchanged = [file for file in files if file.name in cached and cached[file.name].matches(file)]
    dropped = sorted(set(cached) - {file.name for file in files})
    saved: SearchIndex | None = None
    kept: dict[str, FileDocuments] = {}
    if manifest is not None and unchanged:
        saved_dir = entry / manifest["index"]
        nothing_changed = len(unchanged) == len(files) and not dropped
        try:  # anything a damaged entry raises while loading means the same: do not use it
            saved = SearchIndex.load(saved_dir) if nothing_changed else None
            saved_documents = saved.corpus if saved is not None else load_corpus(saved_dir / "corpus.jsonl")
        except Exception as error:
            raise CorruptCache(f"its index does not load ({type(error).__name__}: {error})") from error
        kept = {file.name: _kept_documents(cached[file.name], saved_documents) for file in unchanged}
    to_read = [file for file in files if file.name not in kept]
    reading = read_files(to_read, passages, show_progress) if to_read else iter(())  # no empty bar
    fresh = {file.name: read for file, read in reading}
    corpus: dict[str, Document] = {}
    records: dict[str, CachedFile] = {}
    for file in files:
        read = kept[file.name] if file.name in kept else fresh[file.name]
        report.add(file.name, read)
        corpus.update(read.documents)
        racy = file.mtime_ns >= walked_at - RACY_NS
        records[file.name] = CachedFile(file.size, file.mtime_ns, tuple(read.documents), read.skipped, racy)
    report.finish(len(corpus))
    state = "built" if manifest is None else "loaded" if saved is not None else "updated"
    outcome = CacheOutcome(entry, state, [file.name for file in to_read], dropped)
    if saved is not None:
        _check_loaded(saved, corpus)
        saved.reading = report
        return _Opened(saved, outcome, records)
    require_documents(folder, corpus, report)
    return _Opened(SearchIndex.in_memory(corpus, passages, report), outcome, records)


def _kept_documents(cached: CachedFile, saved: dict[str, Document]) -> FileDocuments:
    """A file's documents as the saved index holds them."""
    missing = [doc_id for doc_id in cached.documents if doc_id not in saved]
    if missing:
        raise CorruptCache(f"its index lacks documents the manifest lists ({missing[0]!r}, ...)")
    return FileDocuments({doc_id: saved[doc_id] for doc_id in cached.documents}, cached.skipped)


def _check_loaded(index: SearchIndex, corpus: dict[str, Document]) -> None:
    """The loaded index holds exactly the manifest's documents, in order, and BM25 indexes them."""
    if list(index.corpus) != list(corpus):
        raise CorruptCache("its documents are not the ones the manifest lists")
    stage = index.first_stage
    if not isinstance(stage, BM25FirstStage) or stage.index.doc_ids != list(corpus):
        raise CorruptCache("its BM25 index does not index the manifest's documents")


def _expected_fields(folder: Path, passages: PassageSettings) -> dict[str, Any]:
    """What a manifest must say to be this folder's entry for this ettin-rerank."""
    return {
        "ettin_rerank": __version__,
        "folder": str(folder),
        "passages": asdict(passages),
        "bm25": asdict(BM25Config()),
    }


def _read_manifest(entry: Path, folder: Path, passages: PassageSettings) -> dict[str, Any] | None:
    """The entry's manifest with its file records parsed; None when there is none yet. Raises
    `CorruptCache` saying why one that is there cannot be used."""
    if not (entry / MANIFEST).exists():
        return None
    try:
        meta = read_index_metadata(
            entry, MANIFEST, "folder search cache", FORMAT_VERSION, _MANIFEST_FIELDS, _REBUILT
        )
    except (OSError, ValueError) as error:
        raise CorruptCache(str(error).removesuffix(f"; {_REBUILT}")) from error
    for key, expected in _expected_fields(folder, passages).items():
        if meta[key] != expected:
            what = "stale" if key == "ettin_rerank" else "foreign"
            raise CorruptCache(f"{entry / MANIFEST} is {what}: its {key} is {meta[key]!r}, not {expected!r}")
    if not isinstance(meta["files"], dict) or not isinstance(meta["index"], str):
        raise CorruptCache(f"{entry / MANIFEST} is corrupt: its files or index field has the wrong type")
    if not meta["index"].startswith(INDEX_PREFIX) or "/" in meta["index"]:
        raise CorruptCache(f"{entry / MANIFEST} is corrupt: it names {meta['index']!r} as its index")
    try:
        meta["files"] = {name: CachedFile.from_dict(record) for name, record in meta["files"].items()}
    except CorruptCache as error:
        raise CorruptCache(f"{entry / MANIFEST} is corrupt: {error}") from error
    return meta


def _save(
    entry: Path, folder: Path, passages: PassageSettings, index: SearchIndex, records: dict[str, CachedFile]
) -> None:
    """Save `index` and its manifest into `entry` (its lock held): each under a temporary name, then
    `os.replace`d into place, the manifest last; then remove what the manifest no longer names."""
    token = uuid.uuid4().hex[:12]
    temporary = entry / f"{TEMP_PREFIX}{token}"
    index.save(temporary)
    index_dir = entry / f"{INDEX_PREFIX}{token}"
    os.replace(temporary, index_dir)
    fields = _expected_fields(folder, passages) | {
        "index": index_dir.name,
        "documents": len(index.corpus),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {name: record.to_dict() for name, record in records.items()},
    }
    write_index_metadata(entry, MANIFEST, FORMAT_VERSION, fields)  # atomic: the manifest changes last
    for leftover in entry.iterdir():
        if leftover.name not in (MANIFEST, LOCK, index_dir.name):
            _remove_path(leftover)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _acquire(entry: Path) -> int:
    """Create `entry` if need be and hold its lock exclusively: the descriptor, whose closing
    releases it. An entry removed while we waited is created anew and locked again."""
    lock_path = entry / LOCK
    while True:
        entry.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            held = os.fstat(descriptor)
            current = os.stat(lock_path)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                return descriptor
        except FileNotFoundError:
            pass  # the entry was removed (`cache clear`) while we waited for its lock
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)


@contextmanager
def _locked(entry: Path) -> Iterator[None]:
    descriptor = _acquire(entry)
    try:
        yield
    finally:
        os.close(descriptor)


def cache_entries() -> list[CacheEntry]:
    """Every folder entry, by folder."""
    entries = [_describe(entry) for folder_dir in _folder_dirs() for entry in _entries_of(folder_dir)]
    return sorted(entries, key=lambda entry: (entry.folder or "", str(entry.path)))


def clear_cache(folder: str | Path | None = None) -> list[CacheEntry]:
    """Remove every entry, or those of `folder` (whatever their passage settings); the entries
    removed. Each goes under its lock, so a search updating it finishes first."""
    folder_dirs = _folder_dirs() if folder is None else [entry_dir(folder, PassageSettings()).parent]
    removed = []
    for folder_dir in folder_dirs:
        for entry in _entries_of(folder_dir):
            described = _describe(entry)
            trash = folders_dir() / f"{TRASH_PREFIX}{uuid.uuid4().hex[:12]}"
            with _locked(entry):
                os.replace(entry, trash)  # one step out of every reader's way
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(described)
        with suppress(OSError):  # not there, or a search made a new entry meanwhile
            folder_dir.rmdir()  # empty once its entries are gone
    return removed


def _folder_dirs() -> list[Path]:
    root = folders_dir()
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _entries_of(folder_dir: Path) -> list[Path]:
    if not folder_dir.is_dir():
        return []
    return sorted(path for path in folder_dir.iterdir() if path.is_dir())


def _describe(entry: Path) -> CacheEntry:
    """An entry as far as its manifest reads (no lock: manifests are replaced whole)."""
    size = 0
    for path in entry.rglob("*"):
        with suppress(OSError):  # removed by a search saving meanwhile
            size += path.stat().st_size if path.is_file() else 0
    try:
        meta = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        return CacheEntry(entry, None, None, None, None, size, None)
    files, folder, passages = meta.get("files"), meta.get("folder"), meta.get("passages")
    documents, updated = meta.get("documents"), meta.get("updated")
    return CacheEntry(
        entry,
        folder if isinstance(folder, str) else None,
        passages if isinstance(passages, dict) else None,
        len(files) if isinstance(files, dict) else None,
        documents if isinstance(documents, int) else None,
        size,
        updated if isinstance(updated, str) else None,
    )
