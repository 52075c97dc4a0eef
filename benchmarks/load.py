"""Load test of `ettin-rerank serve` over loopback, beside the offline `predict` throughput.

N concurrent clients (a closed loop: each sends its next request when the last one is answered)
send rerank requests of D documents each for a bounded time. Throughput counts the requests
completed inside the measured window (after the warm-up); the script reports requests/s,
pairs/s, p50/p95/p99 latency and errors, and the offline
`Reranker.predict` throughput of the same model on the same pairs, measured in the same run
(once before and once after the load, to see machine noise). Writes JSON, prints a table.

    python benchmarks/load.py --size 17m --concurrency 16 --docs 100 --duration 60 \\
        --output benchmarks/results/load-17m.json

Without `--model` a random-weight model of `--size` is written to a temporary directory
(random weights run at the speed of trained ones). Without `--url` the script starts the
server itself on a free loopback port and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT / ".." / "shared"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model directory (default: a random model of --size)")
    parser.add_argument(
        "--size", default="17m", help="Ettin size for the random model (default: %(default)s)"
    )
    parser.add_argument("--tokenizer-dir", type=Path, default=SHARED / "tokenizers" / "modernbert")
    parser.add_argument("--url", help="an already running server (default: start one on loopback)")
    parser.add_argument("--corpus", type=Path, default=SHARED / "data" / "scifact" / "corpus.jsonl")
    parser.add_argument("--queries", type=Path, default=SHARED / "data" / "scifact" / "queries.jsonl")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--docs", type=int, default=100, help="documents per request")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of unmeasured load first")
    parser.add_argument(
        "--offline-pairs", type=int, default=800, help="pairs scored by the offline measurement"
    )
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--endpoint", default="/v2/rerank", help="route to load (default: %(default)s)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    return parser.parse_args(argv)


def load_texts(corpus: Path, queries: Path, limit: int = 20_000) -> tuple[list[str], list[str]]:
    if not corpus.is_file() or not queries.is_file():
        raise SystemExit(f"corpus or queries not found ({corpus}, {queries}); pass --corpus and --queries")
    docs, qs = [], []
    with corpus.open() as handle:
        for line in handle:
            row = json.loads(line)
            docs.append(f"{row.get('title', '')} {row['text']}".strip())
            if len(docs) >= limit:
                break
    with queries.open() as handle:
        qs = [json.loads(line)["text"] for line in handle][:limit]
    return docs, qs


def build_requests(docs: list[str], queries: list[str], per_request: int, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"query": rng.choice(queries), "documents": rng.sample(docs, per_request)} for _ in range(n)]


def offline_throughput(
    model_dir: str, requests: list[dict], pairs_limit: int, args: argparse.Namespace
) -> dict:
    from ettin_rerank import Reranker

    reranker = Reranker.from_pretrained(model_dir, max_length=args.max_length)
    pairs = [(r["query"], d) for r in requests for d in r["documents"]][:pairs_limit]
    reranker.predict(pairs[:32], batch_tokens=args.batch_tokens)  # warm up
    start = time.perf_counter()
    reranker.predict(pairs, batch_tokens=args.batch_tokens, show_progress_bar=False)
    seconds = time.perf_counter() - start
    tokens = int(reranker.encode(pairs).lengths.sum())
    del reranker
    return {
        "pairs": len(pairs),
        "seconds": seconds,
        "pairs_per_s": len(pairs) / seconds,
        "tokens_per_s": tokens / seconds,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: str, args: argparse.Namespace) -> tuple[str, subprocess.Popen]:
    port = free_port()
    command = [sys.executable, "-m", "ettin_rerank", "serve", "--model", model_dir, "--port", str(port)]
    command += ["--max-wait-ms", str(args.max_wait_ms), "--timeout", "300"]
    if args.max_length:
        command += ["--max-length", str(args.max_length)]
    if args.batch_tokens:
        command += ["--batch-tokens", str(args.batch_tokens)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if args.api_key:
        env["ETTIN_RERANK_API_KEY"] = args.api_key
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/ready", headers=auth_headers(args), timeout=2).status_code == 200:
                return url, process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise SystemExit("the server did not become ready in 300 s")
        time.sleep(0.25)


def auth_headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}


async def run_load(url: str, bodies: list[bytes], n_docs: list[int], args: argparse.Namespace) -> dict:
    headers = {"content-type": "application/json", **auth_headers(args)}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    latencies: list[float] = []
    pairs = 0
    errors: dict[str, int] = {}
    counter = 0
    start = time.perf_counter()
    measure_from = start + args.warmup
    stop_at = measure_from + args.duration

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:

        async def worker() -> None:
            nonlocal pairs, counter
            while True:
                k = counter
                counter += 1
                sent = time.perf_counter()
                try:
                    response = await client.post(
                        args.endpoint, content=bodies[k % len(bodies)], headers=headers
                    )
                    status = str(response.status_code)
                    ok = (
                        response.status_code == 200
                        and len(response.json()["results"]) == n_docs[k % len(bodies)]
                    )
                except httpx.HTTPError as error:
                    status, ok = type(error).__name__, False
                done = time.perf_counter()
                if done < measure_from:
                    continue  # throughput counts the requests completed inside the measured window
                if ok:
                    latencies.append(done - sent)
                    pairs += n_docs[k % len(bodies)]
                else:
                    errors[status] = errors.get(status, 0) + 1

        workers = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
        await asyncio.sleep(stop_at - time.perf_counter())
        for task in workers:  # requests still in flight at the end are not counted
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    window = args.duration
    lat = np.asarray(latencies) * 1000.0
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / window,
        "pairs_per_s": pairs / window,
        "latency_ms": {
            "p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "p95": float(np.percentile(lat, 95)) if len(lat) else None,
            "p99": float(np.percentile(lat, 99)) if len(lat) else None,
            "mean": float(lat.mean()) if len(lat) else None,
        },
        "errors": sum(errors.values()),
        "errors_by_status": errors,
    }


def server_metrics(url: str, args: argparse.Namespace) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", headers=auth_headers(args), timeout=10).text
    wanted = (
        "ettin_rerank_batch_pairs_sum",
        "ettin_rerank_batch_pairs_count",
        "ettin_rerank_engine_busy_seconds_total",
    )
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[name] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    docs, queries = load_texts(args.corpus, args.queries)
    requests = build_requests(docs, queries, args.docs, 64, args.seed)
    bodies = [json.dumps(r).encode("utf-8") for r in requests]
    n_docs = [len(r["documents"]) for r in requests]

    with tempfile.TemporaryDirectory(prefix="ettin-load-") as scratch:
        model_dir = args.model
        if model_dir is None:
            from ettin_rerank.family import create_random_reranker

            model_dir = str(
                create_random_reranker(args.size, args.tokenizer_dir, Path(scratch) / args.size, seed=0)
            )
        offline_before = offline_throughput(model_dir, requests, args.offline_pairs, args)
        print(f"offline predict (before): {offline_before['pairs_per_s']:.1f} pairs/s", flush=True)

        process = None
        url = args.url
        if url is None:
            url, process = start_server(model_dir, args)
        try:
            before = server_metrics(url, args)
            served = asyncio.run(run_load(url, bodies, n_docs, args))
            after = server_metrics(url, args)
        finally:
            if process is not None:
                process.terminate()
                process.wait(60)
        offline_after = offline_throughput(model_dir, requests, args.offline_pairs, args)
        print(f"offline predict (after): {offline_after['pairs_per_s']:.1f} pairs/s", flush=True)

    batches = after.get("ettin_rerank_batch_pairs_count", 0) - before.get("ettin_rerank_batch_pairs_count", 0)
    batch_pairs = after.get("ettin_rerank_batch_pairs_sum", 0) - before.get("ettin_rerank_batch_pairs_sum", 0)
    offline = (offline_before["pairs_per_s"] + offline_after["pairs_per_s"]) / 2
    result = {
        "model": args.model or f"random {args.size}",
        "endpoint": args.endpoint,
        "concurrency": args.concurrency,
        "docs_per_request": args.docs,
        "duration_s": args.duration,
        "served": served,
        "offline": {"before": offline_before, "after": offline_after, "pairs_per_s": offline},
        "served_over_offline": served["pairs_per_s"] / offline if offline else None,
        "mean_batch_pairs": batch_pairs / batches if batches else None,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    print_table(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0 if served["errors"] == 0 else 1


def print_table(result: dict) -> None:
    served, lat = result["served"], result["served"]["latency_ms"]

    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    rows = [
        ("model", result["model"]),
        ("concurrency x docs/request", f"{result['concurrency']} x {result['docs_per_request']}"),
        ("requests/s", fmt(served["requests_per_s"], 2)),
        ("served pairs/s", fmt(served["pairs_per_s"])),
        ("offline predict pairs/s", fmt(result["offline"]["pairs_per_s"])),
        ("served / offline", fmt(100 * (result["served_over_offline"] or 0)) + " %"),
        ("latency p50 / p95 / p99 ms", f"{fmt(lat['p50'], 0)} / {fmt(lat['p95'], 0)} / {fmt(lat['p99'], 0)}"),
        ("mean pairs per engine batch", fmt(result["mean_batch_pairs"])),
        ("errors", str(served["errors"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
