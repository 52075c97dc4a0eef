"""A user's own documents: a BEIR `corpus.jsonl`, a folder of files, or one file.

What a folder's files become (decoding, skipping, passages) is decided in `files.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .beir import Document, load_corpus
from .files import PassageSettings, ReadReport, read_folder

logger = logging.getLogger(__name__)


def read_user_corpus(
    path: str | Path, passages: PassageSettings | None = None, show_progress: bool = False
) -> tuple[dict[str, Document], ReadReport]:
    """The documents at `path` and what reading them skipped: a BEIR `corpus.jsonl` (or a dataset
    folder holding one) as it is, else every readable file under the folder (see `files.py`).

    Raises when nothing could be read, naming what was skipped."""
    path = Path(path)
    beir_corpus = beir_corpus_file(path)
    if beir_corpus is not None:
        corpus = load_corpus(beir_corpus)
        # each record is a document as given: nothing skipped, nothing cut
        return corpus, ReadReport(files_read=len(corpus), passages=len(corpus))
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    corpus, report = read_folder(path, passages, show_progress=show_progress)
    require_documents(path, corpus, report)
    return corpus, report


def beir_corpus_file(path: Path) -> Path | None:
    """The BEIR corpus `path` is (a .jsonl file) or holds (`corpus.jsonl`), read as it is; None for
    a folder of documents or any other file."""
    beir_corpus = path / "corpus.jsonl" if path.is_dir() else path
    return beir_corpus if beir_corpus.is_file() and beir_corpus.suffix.lower() == ".jsonl" else None


def require_documents(path: str | Path, corpus: dict[str, Document], report: ReadReport) -> None:
    if not corpus:
        raise ValueError(f"no readable documents in {path}: {report.summary() or 'it holds no files'}")


def _log_skipped(report: ReadReport) -> None:
    summary = report.summary()
    if summary:
        logger.warning("%s", summary)


def load_user_corpus(path: str | Path, passages: PassageSettings | None = None) -> dict[str, Document]:
    """`read_user_corpus`'s documents; files skipped are logged as one warning."""
    corpus, report = read_user_corpus(path, passages)
    _log_skipped(report)
    return corpus


def load_text_directory(
    directory: str | Path, passages: PassageSettings | None = None
) -> dict[str, Document]:
    """The documents of a folder of files (`load_user_corpus` without the BEIR case)."""
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"not a directory: {directory}")
    corpus, report = read_folder(directory, passages)
    require_documents(directory, corpus, report)
    _log_skipped(report)
    return corpus
