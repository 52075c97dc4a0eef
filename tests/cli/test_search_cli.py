"""`ettin-rerank index | search` on real folders: whole documents read, any folder survived."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ettin_rerank.cli import main
from ettin_rerank.models import bundled_model_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUERY = "how often should API keys be rotated?"
ANSWER = (
    "Security policy: API keys and other credentials must be rotated every 90 days from the admin "
    "console, and a leaked key is revoked at once."
)
FILLER = [
    "The garden club met on Tuesday to plan the spring planting of tomatoes and beans.",
    "Our office moved to the third floor, next to the small kitchen with the espresso machine.",
    "The quarterly budget review covered travel costs, hardware purchases and training courses.",
    "Remember to water the ferns in the lobby twice a week during the summer months.",
    "The team lunch on Friday will be at the Italian place across the street from the station.",
    "New laptops arrive next month; please return the old ones to the service desk.",
    "The fire drill is scheduled for the first Monday of every quarter at ten in the morning.",
    "Parking permits for the north garage can be renewed online before the end of the year.",
]


@pytest.fixture
def long_answer_notes(tmp_path):
    """A handbook whose one relevant sentence comes after 800 tokens of unrelated text, among short
    notes that share the query's words without answering it."""
    root = tmp_path / "notes"
    root.mkdir()
    sentences: list[str] = []
    while len(" ".join(sentences).split()) < 700:  # about 900 tokens before the answer
        sentences.append(FILLER[len(sentences) % len(FILLER)])
    (root / "handbook.txt").write_text("Employee handbook.\n" + " ".join([*sentences, ANSWER, *FILLER[:3]]))
    (root / "meeting.txt").write_text(
        "Meeting notes: the API team showed the new API gateway. Office keys: ask reception."
    )
    (root / "keys.md").write_text(
        "# Keyboard shortcuts\nUse these keys to rotate images in the viewer: R rotates by 90 degrees."
    )
    (root / "kitchen.txt").write_text("Descale the kettle with white vinegar once a month.")
    return root


@pytest.fixture(scope="module")
def bundled():
    if bundled_model_dir() is None:
        pytest.skip("this install carries no bundled model")
    return bundled_model_dir()


def search_json(capsys, *argv):
    assert main(["search", *argv, "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_an_answer_after_800_tokens_ranks_first_and_is_the_snippet(bundled, long_answer_notes, capsys):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundled / "tokenizer.json"))
    tokenizer.no_truncation()
    text = (long_answer_notes / "handbook.txt").read_text()
    assert len(tokenizer.encode(text[: text.index("Security policy")], add_special_tokens=False)) > 800

    # Whole files (--passage-words 0): the reranker reads the handbook in windows.
    whole, _ = search_json(capsys, str(long_answer_notes), QUERY, "--passage-words", "0")
    top = whole["results"][0]
    assert whole["long_documents"] == "chunk" and whole["truncated"] == 0
    assert top["doc_id"] == "handbook.txt" and top["passage"] is None
    assert top["n_chunks"] > 1 and top["truncated"] is False
    assert "rotated every 90 days" in top["snippet"] and not top["snippet"].startswith("Employee handbook")

    # Cut to its first tokens, the same handbook loses its answer, and the output says so.
    argv = [str(long_answer_notes), QUERY, "--passage-words", "0", "--long-documents", "truncate"]
    assert main(["search", *argv]) == 0
    captured = capsys.readouterr()
    headings = [line for line in captured.out.splitlines() if not line.startswith("     ")]
    assert not headings[0].startswith("  1. handbook.txt")
    assert any(line.split()[1] == "handbook.txt" and line.endswith("; truncated)") for line in headings)
    assert "note: 1 result(s) above were cut to the reranker's" in captured.err

    # The default: the handbook is cut into passages at read time; the answer's passage ranks first.
    assert main(["search", str(long_answer_notes), QUERY, "-n", "2"]) == 0
    heading, snippet = capsys.readouterr().out.splitlines()[:2]
    assert heading.startswith("  1. handbook.txt, passage ") and "(rerank score " in heading
    assert int(heading.split("passage ")[1].split()[0]) >= 4  # the answer comes late in the file
    assert "rotated every 90 days" in snippet


def test_a_messy_folder_is_indexed_and_searched_with_one_warning(tmp_path, capsys):
    root = tmp_path / "messy"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main kettle\n")
    (root / "kettle.txt").write_text("Descale the kettle with white vinegar once a month.\n")
    (root / "latin.txt").write_bytes("Détartrer la bouilloire (kettle) au vinaigre.\n".encode("latin-1"))
    (root / "utf16.txt").write_bytes("Kettle descaling, in UTF-16.\n".encode("utf-16"))
    (root / "blob.bin").write_bytes(bytes(range(256)) * 8)
    (root / "empty.txt").write_bytes(b"")
    os.symlink(root / "kettle.txt", root / "kettle-link.txt")
    index_dir = root / "index"  # inside the folder: a later index of the folder does not read it
    passages = ["--passage-words", "200", "--passage-overlap", "50"]  # recorded in the index's metadata
    assert main(["index", str(root), "-o", str(index_dir), *passages]) == 0
    captured = capsys.readouterr()
    assert "indexed 3 documents (bm25)" in captured.out
    assert captured.err.count("warning: ") == 1
    assert "skipped 3 of 6 files:" in captured.err and "blob.bin" in captured.err
    assert "Reading files" not in captured.err  # stderr is no terminal here: no bars at all
    meta = json.loads((index_dir / "ettin_index.json").read_text())
    assert meta["reading"]["files_read"] == 3 and meta["passages"] == {"words": 200, "overlap": 50}

    assert main(["search", str(index_dir), "kettle", "--no-rerank", "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert {line.split()[1] for line in out.splitlines() if line[:4].strip().endswith(".")} == {
        "kettle.txt",
        "latin.txt",
        "utf16.txt",
    }
    assert main(["index", str(root), "-o", str(tmp_path / "again")]) == 0  # skips ./index
    assert "indexed 3 documents" in capsys.readouterr().out

    nothing = tmp_path / "binary-only"
    nothing.mkdir()
    (nothing / "a.bin").write_bytes(b"\x00" * 10)
    assert main(["index", str(nothing), "-o", str(tmp_path / "none")]) == 2
    assert "no readable documents" in capsys.readouterr().err


def test_bad_passage_settings_are_a_clear_error(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("words")
    assert (
        main(
            [
                "index",
                str(tmp_path),
                "-o",
                str(tmp_path / "i"),
                "--passage-words",
                "10",
                "--passage-overlap",
                "10",
            ]
        )
        == 2
    )
    assert "passage overlap must be" in capsys.readouterr().err


def test_rank_reports_the_documents_truncation_cut(bundled, long_answer_notes, tmp_path, capsys):
    handbook = (long_answer_notes / "handbook.txt").read_text().replace("\n", " ")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        json.dumps({"text": handbook}) + "\n" + json.dumps({"text": "API keys rotate yearly."}) + "\n"
    )
    assert main(["rank", str(docs), "-q", QUERY, "--long-documents", "truncate", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["truncated"] == 1
    assert {r["index"]: r["truncated"] for r in payload["results"]} == {0: True, 1: False}


def test_our_bar_shows_on_a_terminal_unless_quiet(tmp_path, capsys, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Descale the kettle with white vinegar once a month.")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main(["index", str(tmp_path / "docs"), "-o", str(tmp_path / "i1")]) == 0
    err = capsys.readouterr().err
    assert (
        "Reading files" in err and "Split strings" not in err and "BM25S" not in err
    )  # bm25s's bars stay off
    assert main(["index", str(tmp_path / "docs"), "-o", str(tmp_path / "i2"), "--quiet"]) == 0
    assert "Reading files" not in capsys.readouterr().err


def test_text_shows_a_readable_relevance_and_how_much_was_reranked(
    bundled, long_answer_notes, capsys, caplog
):
    import logging
    import re

    with caplog.at_level(logging.INFO, logger="ettin_rerank"):
        assert main(["search", str(long_answer_notes), QUERY, "-v"]) == 0
    assert any(
        record.getMessage().startswith("loading ") for record in caplog.records
    )  # what the next test checks
    lines = capsys.readouterr().out.splitlines()
    heading = re.match(
        r"  1\. handbook\.txt, passage (\d+) \(words (\d+)-(\d+)\)  relevance (\S+) (\w+)  \(", lines[0]
    )
    assert heading, lines[0]
    probability, label = float(heading[4]), heading[5]
    assert 0 <= probability <= 1 and label == (
        "high" if probability >= 0.5 else "medium" if probability >= 0.2 else "low"
    )
    assert int(heading[2]) > 1 and int(heading[3]) > int(heading[2])
    assert (
        sum(line.split()[1].rstrip(",") == "handbook.txt" for line in lines if line[:4].strip().endswith("."))
        == 1
    )
    summary = lines[-1]
    assert re.fullmatch(r"reranked (\d+) of \1 candidates in \d+\.\d\d s \(budget 1 s\)", summary), summary


def test_json_carries_the_raw_score_and_the_probability(bundled, long_answer_notes, capsys):
    payload, _ = search_json(capsys, str(long_answer_notes), QUERY, "--depth", "2")
    assert (payload["reranked_candidates"], payload["depth"], payload["budget_s"]) == (2, 2, None)
    assert payload["candidates"] > 2 and payload["one_per_file"] is True
    reranked = [r for r in payload["results"] if r["reranked"]]
    assert len(reranked) <= 2 and reranked == payload["results"][: len(reranked)]
    for result in reranked:
        assert 0 <= result["probability"] <= 1 and result["relevance"] in {"high", "medium", "low"}
        assert result["score"] != result["probability"]  # the raw score too
    by_score = sorted(reranked, key=lambda r: -r["score"])
    assert [r["probability"] for r in by_score] == sorted((r["probability"] for r in reranked), reverse=True)
    rest = payload["results"][len(reranked) :]
    assert all(r["probability"] is None and r["relevance"] is None for r in rest)
    assert [r["first_stage_rank"] for r in rest] == sorted(r["first_stage_rank"] for r in rest)


def test_a_tiny_budget_says_how_many_were_reranked(bundled, tmp_path, capsys):
    root = tmp_path / "kettles"
    root.mkdir()
    for i in range(20):
        (root / f"note{i:02d}.txt").write_text(
            f"Note {i}: descale the kettle " + "with vinegar " * (i % 4 + 1)
        )
    assert main(["search", str(root), "descale the kettle", "--budget", "0.000001", "-n", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    headings = [line for line in lines if line[:4].strip().endswith(".")]
    reranked = [line for line in headings if "  relevance " in line]
    assert len(reranked) == 8 and headings[:8] == reranked  # the first batch, above the rest
    assert all("  not reranked  (bm25 score " in line for line in headings[8:])
    assert lines[-1].startswith("reranked 8 of 20 candidates in ")
    assert lines[-1].endswith(" s (budget 1e-06 s; --depth N or --budget S for more)")


def test_passages_lists_every_passage_of_a_file(tmp_path, capsys):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "manual.txt").write_text(
        " ".join(f"Step {i}: check the pump pressure gauge number {i}." for i in range(60))
    )
    (root / "memo.txt").write_text("The pump was serviced in May.")
    cut = ("--passage-words", "200", "--passage-overlap", "50")
    per_file, _ = search_json(capsys, str(root), "pump pressure", "--no-rerank", *cut)
    every, _ = search_json(capsys, str(root), "pump pressure", "--no-rerank", "--passages", *cut)
    assert [r["file"] for r in per_file["results"]] == ["manual.txt", "memo.txt"]
    manual = [r for r in every["results"] if r["file"] == "manual.txt"]
    assert len(manual) == 4 and sorted(r["passage"] for r in manual) == [1, 2, 3, 4]  # 540 words
    assert sorted(tuple(r["words"]) for r in manual) == [(1, 200), (151, 350), (301, 500), (451, 540)]
    assert per_file["one_per_file"] is True and every["one_per_file"] is False
    snippets = [r["snippet"] for r in every["results"]]
    assert len(snippets) == len(set(snippets))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["   "], "the query is empty"),
        ([""], "the query is empty"),
        (["kettle", "--depth", "0"], "--depth must be at least 1, got 0"),
        (["kettle", "--budget", "-1"], "budget must be at least 0 seconds"),
        (["kettle", "-n", "0"], "-n must be at least 1, got 0"),
    ],
)
def test_a_bad_query_or_flag_is_refused_before_the_model_loads(tmp_path, capsys, caplog, argv, message):
    import logging
    import time

    (tmp_path / "a.txt").write_text("Descale the kettle with white vinegar once a month.")
    started = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="ettin_rerank"):
        assert main(["search", str(tmp_path), *argv, "-v"]) == 2
    assert time.perf_counter() - started < 2
    assert message in capsys.readouterr().err
    assert not any(record.getMessage().startswith("loading ") for record in caplog.records)


def test_a_reader_that_stops_early_ends_the_search_quietly(tmp_path):
    """`search ... | head`: the pipe closes under a long output; no traceback, no error line."""
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(40):
        (root / f"pump{i:02d}.txt").write_text(" ".join(f"pump pressure reading {i}-{j}" for j in range(150)))
    command = [sys.executable, "-m", "ettin_rerank", "search", str(root), "pump pressure", "--no-rerank"]
    command += ["--passages", "-n", "500", "--snippet-width", "2000", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1) == b"{"
    process.stdout.close()  # as `head -1` does once it has its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert "Broken pipe" not in stderr and "Traceback" not in stderr and "error" not in stderr
