"""Any folder as documents: which files are read, how they are decoded, and how long ones become
passages. The one place these decisions live; `user_corpus.py` and `SearchIndex` call it.

What is read (`read_folder`):
- every file under the folder, recursively, except hidden ones (any path part starting with ".",
  so `.git`, `.venv`) and folders that are search indexes themselves (they hold `INDEX_MARKER`);
  symlinked folders are not followed, symlinked files are;
- a file reached twice (symlink, hard link) counts once: files are identified by (st_dev, st_ino),
  and a path that is not a symlink is preferred as the name;
- `.html`/`.htm`: text extracted with the stdlib `html.parser`, `<script>`/`<style>` dropped,
  `<title>` as the title; `.pdf`: with pypdf (`pip install ettin-rerank[pdf]`), else skipped with
  that advice; `.md`: a first line `# Heading` is the title; anything else (`.txt`, `.rst`, `.log`,
  no suffix) when its first `SNIFF_BYTES` look like text.
- decoding: a UTF-8 or UTF-16 byte-order mark decides; else UTF-8; else, when the bytes are plainly
  text (no NUL, at most `MAX_CONTROL_FRACTION` control bytes), Windows-1252 (Latin-1 with curly quotes
  and dashes where Latin-1 has control codes) or Latin-1; else the file is binary and skipped. A file
  whose later bytes do not decode as its first ones did is read again with the next of
  `FALLBACK_ENCODINGS`.

Files are streamed (`READ_CHARS` at a time), never read whole, and cut into passages of
`PassageSettings.words` words overlapping by `PassageSettings.overlap`: a file that fits in one
passage is one document with its relative path as id; a longer one gives `path#p1`, `path#p2`, ...
So a 50 MB log costs the memory of its passages, and a first stage ranks passages of one size
whatever the file's size. Every file skipped is recorded with its reason (`ReadReport`), for one
warning at the end.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from tqdm.auto import tqdm

from ..config.retrieval import PassageSettings
from .beir import Document

INDEX_MARKER = "ettin_index.json"  # a folder holding it is a search index, not documents
SNIFF_BYTES = 8192  # how much of a file decides text or binary, and its encoding
READ_CHARS = 1 << 20  # characters decoded per read: the memory a file costs beyond its passages
MAX_CONTROL_FRACTION = 0.01  # Latin-1 only when at most this share of bytes are control codes
# what to try when a file's later bytes do not decode as its first ones did
FALLBACK_ENCODINGS = {"utf-8": "cp1252", "cp1252": "latin-1"}
MAX_WORD_CHARS = 1000  # a longer run without whitespace (base64, minified code) is cut into pieces
HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")
PDF_SUFFIX = ".pdf"

# why a file was skipped: the words of the warning
BINARY = "binary"
EMPTY = "empty"
DUPLICATE = "same file as another path (link)"
UNREADABLE = "unreadable"
NEEDS_PDF_EXTRA = "PDF: install ettin-rerank[pdf]"
BAD_PDF = "PDF without extractable text or unreadable"

_PASSAGE_ID = re.compile(r"^(?P<file>.+)#p(?P<number>[1-9][0-9]*)$")
# bytes that never appear in plain text: C0 controls except tab, newline, form feed, carriage return; DEL
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 32), 127])


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to the folder read
    reason: str


@dataclass
class ReadReport:
    """What reading a folder did: files read, passages made, files skipped and why."""

    files_read: int = 0
    passages: int = 0  # documents made (one per short file, several per long one)
    skipped: list[SkippedFile] = field(default_factory=list)

    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(item.reason for item in self.skipped).most_common())

    def summary(self, examples: int = 3) -> str | None:
        """One line for the end of indexing: how many files were skipped, why, a few of each; or None."""
        if not self.skipped:
            return None
        parts = []
        for reason, count in self.skip_counts().items():
            names = [item.path for item in self.skipped if item.reason == reason][:examples]
            more = ", ..." if count > examples else ""
            parts.append(f"{count} {reason} ({', '.join(names)}{more})")
        total = self.files_read + len(self.skipped)
        return f"skipped {len(self.skipped)} of {total} files: " + "; ".join(parts)

    def add(self, name: str, read: FileDocuments) -> None:
        """Count one file read, or record why it was skipped."""
        if read.skipped is None:
            self.files_read += 1
        else:
            self.skipped.append(SkippedFile(name, read.skipped))

    def finish(self, passages: int) -> None:
        """Close the report: the documents made, the skipped files in path order."""
        self.passages = passages
        self.skipped.sort(key=lambda item: item.path)

    def to_dict(self) -> dict:
        return {"files_read": self.files_read, "passages": self.passages, "skipped": self.skip_counts()}


def passage_position(doc_id: str) -> tuple[str, int | None]:
    """(file, passage number) of a document id: `notes.log#p12` -> ("notes.log", 12); a whole file's
    id -> (id, None)."""
    match = _PASSAGE_ID.match(doc_id)
    return (match["file"], int(match["number"])) if match else (doc_id, None)


@dataclass(frozen=True)
class FolderFile:
    """A file `read_folder` reads, as the walk found it (`stat` only, nothing read yet)."""

    path: Path
    name: str  # relative to the folder read, "/" separators: its documents' ids start with it
    size: int
    mtime_ns: int


@dataclass
class FileDocuments:
    """What one file became: its documents in order (`path#pN` ids for passages), or why it was skipped."""

    documents: dict[str, Document]
    skipped: str | None = None  # the reason (None: read)


def read_folder(
    directory: str | Path,
    passages: PassageSettings | None = None,
    show_progress: bool = False,
) -> tuple[dict[str, Document], ReadReport]:
    """The documents of every readable file under `directory` (or of one file), and what was skipped.

    Ids are paths relative to `directory` with "/" separators (`#pN` for the passages of a long
    file), in path order. A bar over the bytes read shows with `show_progress`.
    """
    passages = passages or PassageSettings()
    report = ReadReport()
    files = list_folder(directory, report)
    corpus: dict[str, Document] = {}
    for file, read in read_files(files, passages, show_progress):
        report.add(file.name, read)
        corpus.update(read.documents)
    report.finish(len(corpus))
    return corpus, report


def list_folder(directory: str | Path, report: ReadReport) -> list[FolderFile]:
    """The files `read_folder` reads under `directory` (or the one file), in path order, found by
    `stat` alone; paths that cannot be read as files (broken links, second links) go to `report`."""
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"{directory} does not exist")
    if directory.is_file():
        return _distinct_files(directory.parent, [directory], report)
    return _distinct_files(directory, _walk(directory), report)


def read_files(
    files: Sequence[FolderFile], passages: PassageSettings, show_progress: bool = False
) -> Iterator[tuple[FolderFile, FileDocuments]]:
    """Each file with what it became, in order; `show_progress`: a bar over the bytes read."""
    with tqdm(
        total=sum(file.size for file in files),
        desc="Reading files",
        unit="B",
        unit_scale=True,
        disable=not show_progress,
    ) as bar:
        for file in files:
            yield file, read_file(file, passages)
            bar.update(file.size)


def read_file(file: FolderFile, passages: PassageSettings) -> FileDocuments:
    """One file's documents, or why it is skipped: the one reading `read_folder` and the kept
    folder index (`folder_cache.py`) both do."""
    documents: dict[str, Document] = {}
    skipped = _read_file(file.path, file.name, passages, documents)
    return FileDocuments(documents, skipped)


def _walk(directory: Path) -> Iterator[Path]:
    """Every non-hidden file path under `directory`, skipping index folders; symlinked folders are
    not entered (os.walk's default), which also rules out link cycles."""
    for folder, subfolders, names in os.walk(directory):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".") and not (Path(folder, name) / INDEX_MARKER).is_file()
        )
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(folder, name)


def _distinct_files(root: Path, candidates: Iterable[Path], report: ReadReport) -> list[FolderFile]:
    """Each distinct regular file, by (st_dev, st_ino), sorted by name; the other paths to the same
    file are recorded as skipped. A path that is not a symlink names the file if any does."""
    by_identity: dict[tuple[int, int], list[tuple[bool, str, Path, os.stat_result]]] = {}
    for path in candidates:
        name = path.relative_to(root).as_posix()
        try:
            stat = path.stat()  # follows a symlink to its target
        except OSError:
            report.skipped.append(SkippedFile(name, UNREADABLE))  # a broken link, no permission
            continue
        if not path.is_file():
            continue  # a device, a socket, a fifo
        by_identity.setdefault((stat.st_dev, stat.st_ino), []).append((path.is_symlink(), name, path, stat))
    files = []
    for paths in by_identity.values():
        paths.sort(key=lambda item: item[:2])  # real paths first, then by name
        _, name, path, stat = paths[0]
        files.append(FolderFile(path, name, stat.st_size, stat.st_mtime_ns))
        report.skipped.extend(SkippedFile(other, DUPLICATE) for _, other, _, _ in paths[1:])
    return sorted(files, key=lambda file: file.name)


def _read_file(path: Path, name: str, passages: PassageSettings, corpus: dict[str, Document]) -> str | None:
    """Add the file's documents to `corpus`; None when read, else why it was skipped."""
    suffix = path.suffix.lower()
    try:
        if suffix == PDF_SUFFIX:
            return _read_pdf(path, name, passages, corpus)
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        if not head:
            return EMPTY
        encoding = sniff_encoding(head, whole=len(head) < SNIFF_BYTES)
        if encoding is None:
            return BINARY
        while True:
            try:
                title, texts = _extract(path, suffix, encoding, passages)
                break
            except UnicodeDecodeError:
                if encoding not in FALLBACK_ENCODINGS:
                    return BINARY
                encoding = FALLBACK_ENCODINGS[encoding]  # the first bytes decoded, later ones did not
    except OSError:
        return UNREADABLE
    return _add_passages(name, title, texts, corpus)


def sniff_encoding(head: bytes, whole: bool = False) -> str | None:
    """The encoding to read a file with, from its first bytes (`whole`: all of it); None when they
    are not text."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the BOM tells the byte order
    if b"\x00" in head:
        return None
    if _control_fraction(head) > MAX_CONTROL_FRACTION:
        return None
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if not whole and error.reason == "unexpected end of data" and error.start >= len(head) - 3:
            return "utf-8"  # the sniffed bytes cut a character in two
    try:
        head.decode("cp1252")
        return "cp1252"  # Latin-1 with Windows punctuation (curly quotes, dashes) where Latin-1 has controls
    except UnicodeDecodeError:
        return "latin-1"  # every byte is a character, and these are plainly text


def _control_fraction(data: bytes) -> float:
    return (len(data) - len(data.translate(None, _CONTROL_BYTES))) / len(data)


def _extract(path: Path, suffix: str, encoding: str, passages: PassageSettings) -> tuple[str, list[str]]:
    """(title, passage texts) of a text file, decoded `READ_CHARS` at a time."""
    splitter = PassageSplitter(passages)
    # UTF-16 with a stray odd byte still reads; UTF-8 stays strict so Latin-1 can be tried instead
    errors = "replace" if encoding == "utf-16" else "strict"
    with path.open(encoding=encoding, errors=errors) as handle:
        chunks = iter(lambda: handle.read(READ_CHARS), "")
        if suffix in HTML_SUFFIXES:
            extractor = HTMLText()
            for chunk in chunks:
                extractor.feed(chunk)
                splitter.feed(extractor.take())
            extractor.close()
            splitter.feed(extractor.take())
            return extractor.title, splitter.close()
        title = ""
        for position, chunk in enumerate(chunks):
            if position == 0 and suffix in MARKDOWN_SUFFIXES:
                title, chunk = markdown_title(chunk)
            splitter.feed(chunk)
        return title, splitter.close()


def markdown_title(text: str) -> tuple[str, str]:
    """A first line `# Heading` as the title, and the text after it; else ("", text)."""
    first, _, rest = text.lstrip().partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest
    return "", text


def _read_pdf(path: Path, name: str, passages: PassageSettings, corpus: dict[str, Document]) -> str | None:
    try:
        from pypdf import PdfReader  # the optional [pdf] extra
    except ImportError:
        return NEEDS_PDF_EXTRA
    splitter = PassageSplitter(passages)
    try:
        reader = PdfReader(path)
        metadata = reader.metadata  # None when the PDF has no document information
        title = str((metadata.get("/Title") if metadata is not None else None) or "").strip()
        for page in reader.pages:
            splitter.feed((page.extract_text() or "") + "\n")
    except OSError:
        return UNREADABLE
    except Exception:  # pypdf raises many kinds for damaged or encrypted files: all mean unreadable
        return BAD_PDF
    texts = splitter.close()
    if not texts:
        return BAD_PDF  # a scanned PDF: images, no text layer
    return _add_passages(name, title, texts, corpus)


def _add_passages(name: str, title: str, texts: list[str], corpus: dict[str, Document]) -> str | None:
    if not texts:
        return EMPTY
    if len(texts) == 1:
        corpus[name] = Document(name, title, texts[0])
        return None
    for number, text in enumerate(texts, start=1):
        doc_id = f"{name}#p{number}"
        corpus[doc_id] = Document(doc_id, title, text)
    return None


class PassageSplitter:
    """Text fed piece by piece -> passages of `settings.words` words, consecutive ones sharing
    `settings.overlap`; holds only the words not yet in a finished passage."""

    def __init__(self, settings: PassageSettings):
        self.size = settings.words
        self.step = settings.words - settings.overlap
        self.overlap = settings.overlap
        self._words: list[str] = []
        self._partial = ""  # a word cut by the end of the last piece
        self._passages: list[str] = []

    def feed(self, text: str) -> None:
        if not text:
            return
        text = self._partial + text
        words = text.split()
        self._partial = words.pop() if words and not text[-1].isspace() else ""
        if len(self._partial) > MAX_WORD_CHARS:  # no whitespace for a long while: do not hold it all
            words.append(self._partial)
            self._partial = ""
        if words and max(map(len, words)) > MAX_WORD_CHARS:
            words = [w[i : i + MAX_WORD_CHARS] for w in words for i in range(0, len(w), MAX_WORD_CHARS)]
        self._words.extend(words)
        if not self.size:
            return  # one document per file
        start = 0
        while len(self._words) - start >= self.size:
            self._passages.append(" ".join(self._words[start : start + self.size]))
            start += self.step
        del self._words[:start]

    def close(self) -> list[str]:
        """The passages; the last holds the words after the previous one (with its overlap)."""
        if self._partial:
            self._words.append(self._partial)
            self._partial = ""
        fresh = len(self._words) - (self.overlap if self._passages else 0)
        if fresh > 0:
            self._passages.append(" ".join(self._words))
        self._words = []
        return self._passages


class HTMLText(HTMLParser):
    """Visible text of an HTML document, fed in pieces; `<script>`/`<style>` dropped, block tags
    break lines, `<title>` kept apart as the title."""

    SKIPPED = {"script", "style", "noscript", "template"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._skipping = 0
        self._in_title = False
        self.title = ""
        self._pieces: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCKS:
            self._pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCKS:
            self._pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in_title:
            self.title = " ".join((self.title + " " + data).split())
        else:
            self._pieces.append(data)

    def take(self) -> str:
        """The text parsed since the last call (it may end inside a word: the splitter joins it)."""
        text = "".join(self._pieces)
        self._pieces = []
        return text
