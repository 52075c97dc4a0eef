"""A user's own documents: a BEIR `corpus.jsonl`, or a directory of `.txt`/`.md` files."""

from __future__ import annotations

import logging
from pathlib import Path

from .beir import Document, load_corpus

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")


def load_text_directory(
    directory: str | Path, suffixes: tuple[str, ...] = TEXT_SUFFIXES
) -> dict[str, Document]:
    """One document per file, found recursively; the id is the path relative to `directory`
    (with "/" separators); a Markdown file whose first line is a `# ` heading uses it
    as the title. Files are read as UTF-8; empty files are skipped with a warning."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"not a directory: {directory}")
    paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    corpus: dict[str, Document] = {}
    empty: list[str] = []
    for path in paths:
        doc_id = path.relative_to(directory).as_posix()
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path} is not UTF-8 text ({error.reason}); convert it or remove it from {directory}"
            ) from error
        if not content.strip():
            empty.append(doc_id)
            continue
        title, text = "", content.strip()
        if path.suffix.lower() == ".md":
            first, _, rest = text.partition("\n")
            if first.startswith("# "):
                title, text = first[2:].strip(), rest.strip()
        corpus[doc_id] = Document(doc_id, title, text)
    if empty:
        logger.warning("%d empty file(s) skipped, e.g. %s", len(empty), empty[0])
    if not corpus:
        raise ValueError(f"no non-empty {'/'.join(suffixes)} files under {directory}; nothing to index")
    return corpus


def load_user_corpus(path: str | Path) -> dict[str, Document]:
    """A BEIR `corpus.jsonl` (or a BEIR dataset directory holding one), or a directory of text files."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".jsonl":
            raise ValueError(f"{path}: expected a BEIR corpus.jsonl file or a directory of .txt/.md files")
        return load_corpus(path)
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return load_corpus(path / "corpus.jsonl")
        return load_text_directory(path)
    raise FileNotFoundError(f"corpus not found: {path}")
