"""The kept index of a folder searched directly (`retrieval/folder_cache.py`): real files in temporary
folders, real processes for concurrency."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from ettin_rerank.cli import main
from ettin_rerank.retrieval import SearchIndex
from ettin_rerank.retrieval.files import PassageSettings, read_folder
from ettin_rerank.retrieval.folder_cache import (
    MANIFEST,
    cache_entries,
    clear_cache,
    entry_dir,
    folders_dir,
    open_folder_index,
)

HOUR_NS = 3600 * 10**9
LONG_TEXT = " ".join(f"word{i} about kettles and valves" for i in range(120))  # several passages


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """A cache directory of this test's own, so it can be checked empty."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ETTIN_RERANK_CACHE_DIR", str(root))
    return root


def age(path, seconds_ago: int = 3600) -> None:
    """Give `path` a modification time in the past: a file changed just before a walk is read again
    (a second change in the same clock tick would not show), so settled files are what is tested."""
    when = time.time_ns() - seconds_ago * 10**9
    os.utime(path, ns=(when, when))


@pytest.fixture
def notes(tmp_path):
    """A folder with files read whole, a long one cut into passages, and files skipped for each reason
    a walk or a read gives."""
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "kettle.txt").write_text("Descale the kettle with white vinegar once a month.\n")
    (root / "valve.md").write_text("# Valves\nTurn the valve clockwise to close it.\n")
    (root / "sub" / "garden.txt").write_text("Water the ferns in the lobby twice a week.\n")
    (root / "long.log").write_text(LONG_TEXT)
    (root / "empty.txt").write_bytes(b"")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("never read: hidden folders are skipped\n")
    for path in root.rglob("*"):
        if path.is_file():
            age(path)
    os.symlink(root / "kettle.txt", root / "alias.txt")  # a second path to a file: skipped
    os.symlink(root / "nowhere.txt", root / "broken.txt")  # unreadable
    return root


def assert_as_read_fresh(index: SearchIndex, folder, passages: PassageSettings | None = None) -> None:
    """The index holds what a fresh `read_folder` gives, in its order, and reports the same."""
    corpus, report = read_folder(folder, passages)
    assert list(index.corpus) == list(corpus)
    assert index.corpus == corpus
    assert index.reading == report
    assert index.first_stage.index.doc_ids == list(corpus)  # type: ignore[attr-defined]


def test_a_cold_build_then_a_warm_load_that_reads_no_file(notes, cache_root):
    cold, built = open_folder_index(notes)
    assert built.state == "built" and built.note is None
    assert built.files_read == [
        "empty.txt",
        "image.png",
        "kettle.txt",
        "long.log",
        "sub/garden.txt",
        "valve.md",
    ]
    assert_as_read_fresh(cold, notes)
    assert cold.reading is not None and cold.reading.skip_counts() == {
        "binary": 1,
        "empty": 1,
        "same file as another path (link)": 1,
        "unreadable": 1,
    }
    assert any(doc_id.startswith("long.log#p") for doc_id in cold.corpus)

    # Same size and time, other words: only a read would see the change, and none happens.
    kettle = notes / "kettle.txt"
    stat = kettle.stat()
    kettle.write_text("Polish the samovar with lemon juice every week.\n".ljust(stat.st_size - 1) + "\n")
    assert kettle.stat().st_size == stat.st_size
    os.utime(kettle, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    warm, loaded = open_folder_index(notes)
    assert loaded.state == "loaded" and loaded.files_read == [] and loaded.files_dropped == []
    assert warm.corpus == cold.corpus and "kettle" in warm.corpus["kettle.txt"].text
    assert warm.reading == cold.reading
    assert warm.retrieve("descale kettle vinegar") == cold.retrieve("descale kettle vinegar")


def test_a_file_changed_in_place_is_read_again(notes, cache_root):
    open_folder_index(notes)
    kettle = notes / "kettle.txt"
    size = kettle.stat().st_size
    kettle.write_text("Polish the samovar with lemon juice each week.\n".ljust(size - 1) + "\n")
    assert kettle.stat().st_size == size  # same size: the new time alone tells the change
    age(kettle, seconds_ago=1800)

    index, updated = open_folder_index(notes)
    assert updated.state == "updated" and updated.files_read == ["kettle.txt"]
    assert "samovar" in index.corpus["kettle.txt"].text
    assert_as_read_fresh(index, notes)
    assert list(index.retrieve("samovar lemon")) == ["kettle.txt"]


def test_added_and_deleted_files_are_reflected(notes, cache_root):
    open_folder_index(notes)
    (notes / "sub" / "garden.txt").unlink()
    (notes / "sub" / "bread.txt").write_text("Bread is baked from flour, water and yeast.\n")
    age(notes / "sub" / "bread.txt")
    (notes / "long.log").write_text(LONG_TEXT + " and a closing line about teapots")
    age(notes / "long.log")

    index, updated = open_folder_index(notes)
    assert updated.state == "updated"
    assert updated.files_read == ["long.log", "sub/bread.txt"] and updated.files_dropped == ["sub/garden.txt"]
    assert_as_read_fresh(index, notes)
    assert list(index.retrieve("flour yeast")) == ["sub/bread.txt"]
    assert index.retrieve("ferns lobby") == {}
    assert open_folder_index(notes)[1].state == "loaded"  # and the update was kept


def test_a_file_changed_just_before_the_walk_is_read_again(notes, cache_root):
    """Its time cannot be trusted yet: a second change in the same clock tick would keep it."""
    (notes / "kettle.txt").write_text("Descale the kettle with lemon once a month.\n")  # now
    assert open_folder_index(notes)[1].state == "built"
    index, again = open_folder_index(notes)
    assert again.state == "updated" and again.files_read == ["kettle.txt"]
    assert_as_read_fresh(index, notes)


def test_one_file_is_kept_like_a_folder(notes, cache_root):
    cold, built = open_folder_index(notes / "valve.md")
    warm, loaded = open_folder_index(notes / "valve.md")
    assert (built.state, loaded.state) == ("built", "loaded")
    assert list(warm.corpus) == ["valve.md"] and warm.corpus == cold.corpus
    assert warm.reading == read_folder(notes / "valve.md")[1]


def manifest_of(folder, passages: PassageSettings | None = None) -> dict:
    return json.loads((entry_dir(folder, passages or PassageSettings()) / MANIFEST).read_text())


def saved_index_dir(folder):
    return entry_dir(folder, PassageSettings()) / manifest_of(folder)["index"]


def not_json(folder) -> None:
    (entry_dir(folder, PassageSettings()) / MANIFEST).write_text("{ not json")


def truncated_manifest(folder) -> None:
    path = entry_dir(folder, PassageSettings()) / MANIFEST
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncated_corpus(folder) -> None:
    """Whole lines cut from the end: a reader of the corpus alone would not notice."""
    path = saved_index_dir(folder) / "corpus.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-2]))


def missing_bm25(folder) -> None:
    shutil.rmtree(saved_index_dir(folder) / "bm25")


def missing_index(folder) -> None:
    shutil.rmtree(saved_index_dir(folder))


def rewrite_manifest(folder, **fields) -> None:
    path = entry_dir(folder, PassageSettings()) / MANIFEST
    path.write_text(json.dumps(json.loads(path.read_text()) | fields))


def older_format(folder) -> None:
    rewrite_manifest(folder, format_version=0)


def older_release(folder) -> None:
    rewrite_manifest(folder, ettin_rerank="0.0.1")


def wrong_file_record(folder) -> None:
    manifest = manifest_of(folder)
    manifest["files"]["kettle.txt"]["documents"] = ["valve.md"]  # another file's document
    rewrite_manifest(folder, files=manifest["files"])


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (not_json, "corrupt"),
        (truncated_manifest, "corrupt"),
        (truncated_corpus, "corrupt"),
        (missing_bm25, "corrupt"),
        (missing_index, "corrupt"),
        (older_format, "format 0 is not supported"),
        (older_release, "stale"),
        (wrong_file_record, "corrupt"),
    ],
)
def test_a_damaged_or_stale_entry_is_rebuilt_with_one_note(notes, cache_root, caplog, damage, said):
    open_folder_index(notes)
    damage(notes)
    with caplog.at_level(logging.WARNING, logger="ettin_rerank.retrieval.folder_cache"):
        index, outcome = open_folder_index(notes)
    assert outcome.state == "rebuilt" and outcome.note is not None and said in outcome.note
    notes_logged = [record.getMessage() for record in caplog.records]
    assert notes_logged == [outcome.note] and "\n" not in outcome.note
    assert_as_read_fresh(index, notes)
    assert open_folder_index(notes)[1].state == "loaded"  # the rebuilt entry is whole


def test_another_folders_entry_is_not_used(tmp_path, notes, cache_root, caplog):
    other = tmp_path / "other"
    other.mkdir()
    (other / "bread.txt").write_text("Bread is baked from flour, water and yeast.\n")
    age(other / "bread.txt")
    open_folder_index(other)
    # the other folder's entry where this folder's belongs, its files' sizes and times matching
    entry_dir(notes, PassageSettings()).parent.mkdir(parents=True)
    shutil.copytree(entry_dir(other, PassageSettings()), entry_dir(notes, PassageSettings()))
    (notes / "bread.txt").write_bytes((other / "bread.txt").read_bytes())
    stat = (other / "bread.txt").stat()
    os.utime(notes / "bread.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))

    with caplog.at_level(logging.WARNING):
        index, outcome = open_folder_index(notes)
    assert outcome.state == "rebuilt" and "foreign" in (outcome.note or "")
    assert_as_read_fresh(index, notes)


def test_passage_settings_have_entries_of_their_own(notes, cache_root):
    whole = PassageSettings(words=0)
    assert open_folder_index(notes, whole)[1].state == "built"
    index, outcome = open_folder_index(notes)
    assert outcome.state == "built"  # not the whole-file entry
    assert_as_read_fresh(index, notes)
    assert "long.log" in open_folder_index(notes, whole)[0].corpus
    assert manifest_of(notes, whole)["passages"] == asdict(whole)
    assert {entry.folder for entry in cache_entries()} == {str(notes)} and len(cache_entries()) == 2


def test_an_unwritable_cache_searches_without_it(notes, tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("ETTIN_RERANK_CACHE_DIR", str(blocked))
    with caplog.at_level(logging.WARNING):
        index, outcome = open_folder_index(notes)
    assert outcome.state == "uncached" and "cannot keep the index" in (outcome.note or "")
    assert_as_read_fresh(index, notes)


def test_a_folder_without_documents_leaves_no_entry(tmp_path, cache_root):
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="no readable documents"):
        open_folder_index(tmp_path / "blank")
    assert cache_entries() == []


def test_search_index_open_keeps_folders_not_corpus_files(notes, tmp_path, cache_root):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "d1", "title": "", "text": "kettles"}) + "\n")
    SearchIndex.open(corpus)
    assert cache_entries() == []  # a corpus.jsonl is read as it is, each time
    index = SearchIndex.open(notes, cache=False)
    assert cache_entries() == []
    assert_as_read_fresh(index, notes)
    assert SearchIndex.open(notes).corpus == index.corpus
    assert [entry.folder for entry in cache_entries()] == [str(notes)]


def run_cli(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_search_no_cache_then_cache_list_and_clear(notes, tmp_path, cache_root, capsys):
    run_cli(capsys, "search", str(notes), "descale the kettle", "--no-rerank", "--no-cache")
    assert not cache_root.exists() or list(cache_root.rglob("*")) == []

    found = json.loads(run_cli(capsys, "search", str(notes), "descale the kettle", "--no-rerank", "--json"))
    assert found["results"][0]["file"] == "kettle.txt"
    other = tmp_path / "other"
    other.mkdir()
    (other / "bread.txt").write_text("Bread is baked from flour, water and yeast.\n")
    run_cli(capsys, "search", str(other), "bread", "--no-rerank")

    listed = json.loads(run_cli(capsys, "cache", "--json"))
    assert listed["cache_dir"] == str(folders_dir())
    entries = {entry["folder"]: entry for entry in listed["entries"]}
    assert set(entries) == {str(notes), str(other)}
    assert entries[str(notes)]["documents"] == len(read_folder(notes)[0])
    assert entries[str(notes)]["files"] == 6 and entries[str(notes)]["size_bytes"] > 0
    assert entries[str(notes)]["updated"] is not None
    assert str(notes) in run_cli(capsys, "cache")

    assert "removed 1" in run_cli(capsys, "cache", "clear", str(notes))
    assert [entry.folder for entry in cache_entries()] == [str(other)]
    cleared = json.loads(run_cli(capsys, "cache", "clear", "--json"))
    assert [entry["folder"] for entry in cleared["cleared"]] == [str(other)]
    assert cache_entries() == [] and list(folders_dir().iterdir()) == []
    assert "no kept indexes" in run_cli(capsys, "cache")


def test_clear_of_a_folder_without_entries_removes_nothing(notes, tmp_path, cache_root):
    open_folder_index(notes)
    assert clear_cache(tmp_path / "elsewhere") == []
    assert len(cache_entries()) == 1


def test_two_processes_searching_one_folder_at_once(tmp_path, cache_root):
    """Two `search` processes started together on a cold folder of 300 files both answer, the same,
    and leave an entry that loads whole."""
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(300):
        path = folder / f"note{number:03d}.txt"
        path.write_text(f"Note {number}: the kettle number {number} needs descaling. " * 20)
        age(path)
    command = [
        sys.executable,
        "-m",
        "ettin_rerank",
        "search",
        str(folder),
        "kettle 17",
        "--no-rerank",
        "--json",
    ]
    env = os.environ | {"ETTIN_RERANK_CACHE_DIR": str(cache_root)}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, error) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, error
        assert "warning" not in error.lower(), error
    first, second = (json.loads(out) for out, _ in outputs)
    assert first == second and first["results"][0]["file"] == "note017.txt"

    index, outcome = open_folder_index(folder)
    assert outcome.state == "loaded" and outcome.files_read == []
    assert_as_read_fresh(index, folder)
    left = sorted(path.name for path in entry_dir(folder, PassageSettings()).iterdir())
    assert left == sorted([manifest_of(folder)["index"], "lock", MANIFEST])  # no temporary left
