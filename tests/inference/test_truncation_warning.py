"""`predict`/`rank` keep the truncating default but warn once per call that cut documents; `chunk`,
`score_pairs` and the CLI (which reports the count itself) stay silent."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from ettin_rerank import Reranker
from ettin_rerank.inference.reranker import TruncationWarning

QUERY = "what is ettin?"
LONG = "a giant of norse myth with two heads " * 40  # far over 32 tokens
SHORT = ["a giant", "a reranker family"]


@pytest.fixture(scope="module")
def short_window(tiny_reranker_dir) -> Reranker:
    return Reranker.from_pretrained(tiny_reranker_dir, max_length=32)


def caught(call) -> list[warnings.WarningMessage]:
    """The TruncationWarnings one call raises, every one of them (not Python's once-per-line filter)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        call()
    return [r for r in records if issubclass(r.category, TruncationWarning)]


def test_predict_warns_once_naming_how_many_and_chunk(short_window):
    pairs = [(QUERY, LONG), (QUERY, SHORT[0]), (QUERY, LONG)]
    records = caught(lambda: short_window.predict(pairs))
    assert len(records) == 1
    message = str(records[0].message)
    assert "2 of 3 documents were cut to the model's 32 tokens" in message
    assert 'long_documents="chunk"' in message
    assert records[0].filename == __file__  # points at the caller's line, not the library's


def test_rank_warns_once_and_still_reports_each_cut_document(short_window):
    documents = [LONG, SHORT[0], LONG, LONG]
    results: list = []
    records = caught(lambda: results.extend(short_window.rank(QUERY, documents)))
    assert len(records) == 1 and "3 of 4 documents" in str(records[0].message)
    assert records[0].filename == __file__
    assert sum(item["truncated"] for item in results) == 3  # the truncating default is kept


def test_no_warning_when_nothing_was_cut_or_when_chunking(short_window):
    assert caught(lambda: short_window.predict([(QUERY, d) for d in SHORT])) == []
    assert caught(lambda: short_window.rank(QUERY, SHORT)) == []
    assert caught(lambda: short_window.predict([(QUERY, LONG)], long_documents="chunk")) == []
    assert caught(lambda: short_window.rank(QUERY, [LONG, *SHORT], long_documents="chunk")) == []


def test_score_pairs_is_silent(short_window):
    """The `PairScorer` contract (evaluation, teachers, bench) scores fixed windows on purpose."""
    assert caught(lambda: short_window.score_pairs([(QUERY, LONG)] * 3)) == []


def test_the_cli_reports_the_cut_once_without_the_warning(short_window, tiny_reranker_dir, tmp_path, capsys):
    from ettin_rerank.cli import main

    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join([LONG, *SHORT]) + "\n")
    argv = ["rank", str(docs), "-q", QUERY, "-m", str(tiny_reranker_dir), "--max-length", "32"]
    argv += ["--long-documents", "truncate"]  # the command chunks by default
    assert caught(lambda: main(argv)) == []
    err = capsys.readouterr().err
    assert err.count("1 of 3 documents were cut") == 1 and "TruncationWarning" not in err


def test_a_library_user_sees_the_warning_by_default(tiny_reranker_dir):
    """Python's default warning filter shows it on stderr, with no logging configured."""
    code = (
        "from ettin_rerank import Reranker\n"
        f"reranker = Reranker.from_pretrained({str(tiny_reranker_dir)!r}, max_length=32)\n"
        f"reranker.predict([({QUERY!r}, {LONG!r})])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "TruncationWarning: 1 of 1 documents were cut" in result.stderr
