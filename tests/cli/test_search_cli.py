"""`ettin-rerank index | search` on real folders: whole documents read, any folder survived."""

from __future__ import annotations

import json
import os

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
