"""The resident search process, as a person meets it: real `ettin-rerank` processes, a real socket.

A search that loads its model leaves a resident holding it; the next searches with the same model
and flags run in it and print exactly what a search in its own process prints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

QUERY = "at what temperature does the zorblax alloy melt?"


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ettin_rerank", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def residents(env: dict[str, str]) -> list[dict]:
    done = cli("resident", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["residents"]


def wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def without_timing(stdout: str) -> dict:
    payload = json.loads(stdout)
    payload.pop("rerank_seconds")
    return payload


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "report.txt").write_text("Lab report. The zorblax alloy melts at exactly 1,234 degrees Celsius.")
    (root / "name.txt").write_text("Zorblax alloy was named after the mining town where its ore was found.")
    (root / "kitchen.txt").write_text("Descale the kettle with white vinegar once a month.")
    return root


@pytest.fixture
def env():
    """An environment of its own: a short cache path (a socket path has at most ~100 bytes), residents
    allowed, and every resident stopped (killed if it must be) at the end."""
    cache = Path(tempfile.mkdtemp(prefix="er-res-"))
    environment = {**os.environ, "ETTIN_RERANK_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    environment.pop("ETTIN_RERANK_KEEP_LOADED", None)
    yield environment
    cli("resident", "stop", env=environment)
    kill_residents_of(cache)  # one still loading its model does not answer `stop` yet
    shutil.rmtree(cache, ignore_errors=True)


def kill_residents_of(cache: Path) -> None:
    marker = f"ETTIN_RERANK_CACHE_DIR={cache}\0".encode()
    for process in Path("/proc").iterdir():
        try:
            ours = process.name.isdigit() and marker in (process / "environ").read_bytes()
            if ours and b"resident" in (process / "cmdline").read_bytes():
                os.kill(int(process.name), signal.SIGKILL)
        except OSError:  # gone meanwhile, or not ours to read
            continue


def test_a_search_leaves_the_model_loaded_and_the_next_runs_in_it(folder, env, tiny_reranker_dir, tmp_path):
    model = ["--model", str(tiny_reranker_dir)]
    first = cli("search", str(folder), QUERY, *model, "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert "the model stays loaded in a background process for 10 idle minutes" in first.stderr
    wait_for(lambda: len(residents(env)) == 1)
    [status] = residents(env)
    assert status["searches"] == 0 and status["model"] == str(tiny_reranker_dir)

    # the same search in the resident prints what it printed in its own process, and no note
    second = cli("search", str(folder), QUERY, *model, "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert without_timing(second.stdout) == without_timing(first.stdout)
    assert "stays loaded" not in second.stderr
    assert residents(env)[0]["searches"] == 1

    # a relative folder is the client's, not the resident's; text output as well
    elsewhere = cli("search", "notes", QUERY, *model, env=env, cwd=folder.parent)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.splitlines()[0].startswith("  1. report.txt")
    assert residents(env)[0]["searches"] == 2

    # a client's mistake is the client's error; the resident answers the next one
    empty = cli("search", str(folder), "   ", *model, env=env)
    assert (empty.returncode, empty.stderr.strip()) == (2, "error: the query is empty")
    missing = cli("search", str(tmp_path / "nowhere"), QUERY, *model, env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert residents(env)[0]["searches"] == 4

    # other loading flags decide other scores: not this resident's search, it starts its own
    other = cli("search", str(folder), QUERY, *model, "--max-length", "64", "--json", env=env)
    assert other.returncode == 0 and "stays loaded" in other.stderr
    assert residents(env)[0]["searches"] == 4
    wait_for(lambda: len(residents(env)) == 2)

    stopped = cli("resident", "stop", env=env)
    assert stopped.stdout.strip() == "stopped 2 resident process(es)"
    wait_for(lambda: not list((Path(env["ETTIN_RERANK_CACHE_DIR"]) / "resident").glob("*.sock")), 30)
    assert residents(env) == []


def test_a_dead_resident_costs_nothing_but_its_speed(folder, env, tiny_reranker_dir):
    model = ["--model", str(tiny_reranker_dir)]
    first = cli("search", str(folder), QUERY, *model, "--json", env=env)
    wait_for(lambda: len(residents(env)) == 1)
    [status] = residents(env)
    os.kill(status["pid"], signal.SIGKILL)  # its socket file stays behind
    wait_for(lambda: not residents(env), 30)

    again = cli("search", str(folder), QUERY, *model, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert without_timing(again.stdout) == without_timing(first.stdout)
    assert "stays loaded" in again.stderr  # searched in its own process, and started a new resident
    wait_for(lambda: len(residents(env)) == 1)


def test_an_idle_resident_exits_on_its_own(folder, env, tiny_reranker_dir):
    done = cli(
        "search", str(folder), QUERY, "--model", str(tiny_reranker_dir), "--keep-loaded", "0.05", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "for 0.05 idle minutes" in done.stderr
    sockets = Path(env["ETTIN_RERANK_CACHE_DIR"]) / "resident"
    wait_for(lambda: list(sockets.glob("*.sock")))  # it loaded and listened ...
    wait_for(lambda: not list(sockets.glob("*.sock")), 60)  # ... and, 3 s idle, removed its socket


def test_keep_loaded_zero_starts_nothing(folder, env, tiny_reranker_dir):
    done = cli("search", str(folder), QUERY, "--model", str(tiny_reranker_dir), "--keep-loaded", "0", env=env)
    assert done.returncode == 0 and "stays loaded" not in done.stderr
    assert not (Path(env["ETTIN_RERANK_CACHE_DIR"]) / "resident").exists()
    negative = cli("search", str(folder), QUERY, "--keep-loaded", "-1", env=env)
    assert (negative.returncode, negative.stderr.strip()) == (
        2,
        "error: --keep-loaded must be at least 0 minutes, got -1",
    )


def test_a_cache_it_cannot_write_leaves_the_search_whole(folder, env, tiny_reranker_dir, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    env = {**env, "ETTIN_RERANK_CACHE_DIR": str(blocked)}
    done = cli("search", str(folder), QUERY, "--model", str(tiny_reranker_dir), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("  1. ")
    assert "stays loaded" not in done.stderr


def test_a_reader_that_stops_early_ends_a_resident_search_quietly(env, tiny_reranker_dir, tmp_path):
    """`search ... | head` through the resident: exit 141, no error line, and the resident lives on."""
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(40):
        (root / f"pump{i:02d}.txt").write_text(" ".join(f"pump pressure reading {i}-{j}" for j in range(150)))
    command = ["search", str(root), "pump pressure", "--model", str(tiny_reranker_dir), "--budget", "0"]
    command += ["--passages", "-n", "500", "--snippet-width", "2000", "--json"]
    assert cli(*command, env=env).returncode == 0
    wait_for(lambda: len(residents(env)) == 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "ettin_rerank", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1) == b"{"
    process.stdout.close()  # as `head -1` does once it has its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert "Broken pipe" not in stderr and "Traceback" not in stderr and "error" not in stderr
    [status] = residents(env)
    assert status["searches"] == 1
