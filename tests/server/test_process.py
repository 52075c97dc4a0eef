"""The real server process on a loopback port: concurrent clients, graceful shutdown, disconnects."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import TINY_MAX_LENGTH

FAKE_SERVER = Path(__file__).with_name("serve_fake.py")

API_KEY = "loopback-key"
WORDS = [
    "cats",
    "purr",
    "dogs",
    "bark",
    "sunlight",
    "water",
    "glucose",
    "volcano",
    "lava",
    "chess",
    "board",
    "bread",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(
    *args: str,
    env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    fake_seconds_per_pair: float | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`ettin-rerank serve ARGS` on a free port; with `fake_seconds_per_pair`, the same command
    serving the test fake scorer (tests/server/serve_fake.py) instead of a model."""
    port = free_port()
    if fake_seconds_per_pair is None:
        program = ["-m", "ettin_rerank", "serve"]
    else:
        program = [str(FAKE_SERVER), str(fake_seconds_per_pair)]
    command = [
        sys.executable,
        *program,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{process.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not come up")
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(url: str, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/ready", headers=headers, timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.1)


def random_request(rng: random.Random, k: int) -> tuple[str, list[str]]:
    query = " ".join(rng.sample(WORDS, 3)) + f" q{k}"
    docs = [
        " ".join(rng.choices(WORDS, k=rng.randint(1, 30))) + f" d{k}-{i}" for i in range(rng.randint(1, 25))
    ]
    return query, docs


def test_concurrent_clients_get_exactly_their_own_scores(tiny_model_dir: Path, tiny_reranker):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    args = ("--model", str(tiny_model_dir), "--max-length", str(TINY_MAX_LENGTH), "--max-wait-ms", "20")
    args += ("--dtype", "float32")  # the mode `tiny_reranker` scores in (serve's default is auto)
    with serve(*args, env={"ETTIN_RERANK_API_KEY": API_KEY}) as (url, _):
        wait_ready(url, headers)
        assert httpx.post(f"{url}/v2/rerank", json={"query": "q", "documents": ["d"]}).status_code == 401
        rng = random.Random(0)
        requests = [random_request(rng, k) for k in range(32)]
        routes = ["/v2/rerank", "/v1/rerank", "/rerank", "/score"]

        def send(k: int):
            query, docs = requests[k]
            route = routes[k % len(routes)]
            if route == "/score":
                body = {"text_1": query, "text_2": docs, "use_activation": False}
            elif route == "/rerank":
                body = {"query": query, "texts": docs, "raw_scores": True}
            else:
                body = {"query": query, "documents": docs, "use_activation": False}
            with httpx.Client(timeout=120) as client:
                return route, client.post(f"{url}{route}", json=body, headers=headers)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(len(requests))))

    for (query, docs), (route, response) in zip(requests, answers, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        if route == "/score":
            items = [(d["index"], d["score"]) for d in body["data"]]
        elif route == "/rerank":
            items = [(d["index"], d["score"]) for d in body]
        else:
            items = [(d["index"], d["relevance_score"]) for d in body["results"]]
        indices = [i for i, _ in items]
        assert sorted(indices) == list(range(len(docs))), "indices must be a permutation of the request's"
        expected = tiny_reranker.predict([(query, d) for d in docs])
        np.testing.assert_allclose([s for _, s in items], expected[indices], rtol=1e-4, atol=1e-5)


def test_graceful_shutdown_finishes_in_flight_requests():
    with serve(fake_seconds_per_pair=0.02) as (url, process):
        wait_ready(url)
        answer = {}

        def slow():
            body = {
                "query": "cats purr",
                "documents": [f"cats purr {i}" for i in range(50)],
            }  # 1 s of fake compute
            answer["response"] = httpx.post(f"{url}/v2/rerank", json=body, timeout=30)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.4)  # admitted and being scored
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert thread.is_alive(), "the slow request should still be in flight"
        with pytest.raises(httpx.ConnectError):  # new connections are refused at once
            httpx.get(f"{url}/health", timeout=2)
        thread.join(30)
        assert answer["response"].status_code == 200  # the in-flight request finished
        assert sorted(r["index"] for r in answer["response"].json()["results"]) == list(range(50))
        assert process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean drain


def test_a_client_disconnect_cancels_its_queued_work():
    with serve("--batch-tokens", "64", fake_seconds_per_pair=0.01) as (url, _):
        wait_ready(url)
        body = {
            "query": "cats purr",
            "documents": [f"cats purr {i}" for i in range(300)],
        }  # 3 s if scored in full
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v2/rerank", json=body, timeout=httpx.Timeout(5, read=0.3))
        time.sleep(1.0)
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'ettin_rerank_rejected_total{reason="client_disconnected"} 1.0' in metrics
        scored = [line for line in metrics.splitlines() if line.startswith("ettin_rerank_pairs_scored_total")]
        assert float(scored[0].split()[-1]) < 150, "the dropped request's queued pairs must not be scored"


def test_access_log_without_verbose_and_the_served_name():
    with serve("--access-log", "--served-model-name", "acme/reranker", fake_seconds_per_pair=0.0) as (
        url,
        process,
    ):
        wait_ready(url)
        assert httpx.get(f"{url}/v1/models", timeout=5).json()["data"][0]["id"] == "acme/reranker"
        assert (
            httpx.post(f"{url}/v2/rerank", json={"query": "q", "documents": ["d"]}, timeout=5).status_code
            == 200
        )
        assert httpx.post(f"{url}/v2/rerank", json={"query": "q"}, timeout=5).status_code == 422
    output = process.stdout.read()
    assert f"ettin-rerank serving acme/reranker on {url}" in output
    assert re.search(r"ettin_rerank\.server\.access: \S+ POST /v2/rerank 200 \d+\.\d ms", output), output
    assert re.search(r"POST /v2/rerank 422 \d+\.\d ms", output) and re.search(r"GET /v1/models 200", output)


def test_a_port_in_use_fails_with_one_clear_line(tiny_model_dir: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "ettin_rerank", "serve", "--model", str(tiny_model_dir)]
        finished = subprocess.run(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert finished.returncode != 0
    assert finished.stdout == ""  # nothing says "serving"
    assert finished.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; pick another with --port"
    ]
