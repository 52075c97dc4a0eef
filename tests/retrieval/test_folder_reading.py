"""Any folder as documents (`retrieval/files.py`): decoding, skipping, links, passages, streaming."""

from __future__ import annotations

import logging
import os
import tracemalloc

import pytest

from ettin_rerank.retrieval import files
from ettin_rerank.retrieval.files import (
    BINARY,
    DUPLICATE,
    EMPTY,
    NEEDS_PDF_EXTRA,
    PassageSettings,
    PassageSplitter,
    passage_position,
    read_folder,
    sniff_encoding,
)
from ettin_rerank.retrieval.user_corpus import load_user_corpus


@pytest.fixture
def messy(tmp_path):
    """One file of every kind the reader must handle."""
    root = tmp_path / "messy"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core] repositoryformatversion = 0\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "site.txt").write_text("hidden folder text\n")
    (root / ".notes.txt").write_text("a hidden file\n")
    (root / "plain.txt").write_text("Descale the kettle with white vinegar once a month.\n")
    (root / "latin1.txt").write_bytes("Crème brûlée au café, déjà vu.\n".encode("latin-1"))
    (root / "utf16.txt").write_bytes("Ünïcode kettle notes in UTF-16.\n".encode("utf-16"))
    (root / "bom8.md").write_bytes("# Titled\nA UTF-8 file with a byte-order mark.\n".encode("utf-8-sig"))
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text("  \n\n ")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (root / "data.bin").write_bytes(bytes(range(1, 32)) * 100)  # control bytes without a NUL
    (root / "sub" / "guide.rst").write_text("Guide\n=====\n\nTurn the valve clockwise to close it.\n")
    (root / "page.html").write_text(
        "<html><head><title>Valve page</title><style>p {color: red}</style>"
        "<script>var hidden = 'script text';</script></head>"
        "<body><h1>Valves</h1><p>Open the <b>valve</b>&nbsp;slowly &amp; carefully.</p></body></html>"
    )
    (root / "scan.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    os.symlink(root / "plain.txt", root / "alias.txt")  # a symlink to a file already read
    os.link(root / "sub" / "guide.rst", root / "guide-copy.rst")  # a hard link
    os.symlink(root / "sub", root / "sub-link")  # a symlinked folder: not entered
    return root


def test_every_kind_of_file_is_read_or_skipped_with_a_reason(messy, monkeypatch):
    monkeypatch.setattr(files, "_read_pdf", lambda *args: NEEDS_PDF_EXTRA)  # as without pypdf
    corpus, report = read_folder(messy)
    assert sorted(corpus) == [
        "bom8.md",
        "guide-copy.rst",  # the hard link's name sorts first; the same file is read once
        "latin1.txt",
        "page.html",
        "plain.txt",
        "utf16.txt",
    ]
    assert corpus["latin1.txt"].text == "Crème brûlée au café, déjà vu."
    assert corpus["utf16.txt"].text == "Ünïcode kettle notes in UTF-16."
    assert (corpus["bom8.md"].title, corpus["bom8.md"].text) == (
        "Titled",
        "A UTF-8 file with a byte-order mark.",
    )
    assert corpus["page.html"].title == "Valve page"
    assert corpus["page.html"].text == "Valves Open the valve slowly & carefully."
    assert "Turn the valve clockwise" in corpus["guide-copy.rst"].text
    skipped = {item.path: item.reason for item in report.skipped}
    assert skipped == {
        "alias.txt": DUPLICATE,  # the symlink, not the real path, is the duplicate
        "sub/guide.rst": DUPLICATE,
        "blank.md": EMPTY,
        "empty.txt": EMPTY,
        "image.png": BINARY,
        "data.bin": BINARY,
        "scan.pdf": NEEDS_PDF_EXTRA,
    }
    assert (report.files_read, report.passages) == (6, 6)
    summary = report.summary(examples=1)
    assert summary.startswith("skipped 7 of 13 files: ")
    assert "2 binary (data.bin, ...)" in summary and "1 PDF: install ettin-rerank[pdf] (scan.pdf)" in summary


def test_the_skip_warning_is_logged_once(messy, caplog):
    with caplog.at_level(logging.WARNING):
        load_user_corpus(messy)
    warnings = [r for r in caplog.records if r.name.startswith("ettin_rerank")]
    assert len(warnings) == 1 and "skipped 7 of 13 files" in warnings[0].getMessage()


def test_pdf_text_is_read_with_the_extra(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Blank"})
    with (tmp_path / "blank.pdf").open("wb") as handle:
        writer.write(handle)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    corpus, report = read_folder(tmp_path)
    assert corpus == {}  # no text layer on a blank page, and a damaged file: both skipped, counted
    assert {item.path for item in report.skipped} == {"blank.pdf", "broken.pdf"}
    assert all("PDF" in item.reason for item in report.skipped)


def test_sniffing_decides_the_encoding():
    assert sniff_encoding(b"plain ascii\n") == "utf-8"
    assert sniff_encoding("caf\u00e9".encode()[:-1]) == "utf-8"  # a character cut by the sniff
    assert sniff_encoding("café".encode("latin-1"), whole=True) == "cp1252"
    assert sniff_encoding("“café” au lait".encode("cp1252")) == "cp1252"
    assert sniff_encoding(b"caf\xe9 \x81") == "latin-1"  # 0x81 is no Windows-1252 character
    assert sniff_encoding("x".encode("utf-16")) == "utf-16"
    assert sniff_encoding(b"text\x00with a NUL") is None
    assert sniff_encoding(bytes(range(1, 9)) * 10 + b"mostly control bytes") is None


def test_a_file_that_stops_being_utf8_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SNIFF_BYTES", 64)
    (tmp_path / "late.txt").write_bytes(b"a" * 100 + " caf\u00e9 \u201cquoted\u201d".encode("cp1252"))
    (tmp_path / "later.txt").write_bytes(b"a" * 100 + b" caf\xe9 \x81")
    corpus, _ = read_folder(tmp_path)
    assert corpus["late.txt"].text.endswith(" café “quoted”")
    assert corpus["later.txt"].text.endswith(" café \x81")


def test_passages_overlap_and_cover_every_word():
    splitter = PassageSplitter(PassageSettings(words=10, overlap=3))
    words = [f"w{i}" for i in range(25)]
    text = " ".join(words)
    for start in range(0, len(text), 7):  # pieces that cut words in two
        splitter.feed(text[start : start + 7])
    passages = [p.split() for p in splitter.close()]
    assert passages == [words[0:10], words[7:17], words[14:24], words[21:25]]
    short = PassageSplitter(PassageSettings(words=10, overlap=3))
    short.feed("only four words here")
    assert short.close() == ["only four words here"]
    whole = PassageSplitter(PassageSettings(words=0))
    whole.feed(text)
    assert whole.close() == [text]
    with pytest.raises(ValueError, match="overlap"):
        PassageSettings(words=10, overlap=10)
    with pytest.raises(ValueError, match=">= 0"):
        PassageSettings(words=-1)


def test_a_multi_megabyte_file_is_streamed_into_passages(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_CHARS", 1 << 16)  # many reads, so streaming is what is measured
    line = "the pump log records pressure and flow every second without fail\n"  # 11 words
    lines = 60_000  # 660,000 words, about 4 MB
    with (tmp_path / "pump.log").open("w") as handle:
        for i in range(lines):
            handle.write(line if i != lines - 10 else "ALARM valve seventeen stuck open near the end\n")
    size = (tmp_path / "pump.log").stat().st_size
    assert size > 3_500_000
    tracemalloc.start()
    corpus, report = read_folder(tmp_path, PassageSettings(words=200, overlap=50))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total_words = (lines - 1) * 11 + 8
    assert len(corpus) == report.passages == -(-(total_words - 50) // 150)
    assert list(corpus)[:2] == ["pump.log#p1", "pump.log#p2"]
    assert passage_position("pump.log#p2") == ("pump.log", 2)
    assert passage_position("notes/a#b.txt") == ("notes/a#b.txt", None)
    assert all(len(doc.text.split()) <= 200 for doc in corpus.values())
    alarm = [doc_id for doc_id, doc in corpus.items() if "ALARM" in doc.text]
    assert alarm and alarm[-1] == f"pump.log#p{len(corpus)}"  # found near the end, in the last passages
    # The passages themselves hold about 4/3 of the text (the overlap); a file read whole, then
    # split into a list of words, would need several times the file's size on top of that.
    passage_chars = sum(len(doc.text) for doc in corpus.values())
    assert peak < 2 * passage_chars + 8 * 1024 * 1024
