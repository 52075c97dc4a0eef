"""The issue's folder case: `index` and `search` over 200 messy files, as a user runs them.

    .venv/bin/python benchmarks/messy_folder.py --out bench-results/messy_folder.json [--big-mb 50]

Builds a folder of 200 files (190 short notes, a binary file, a Latin-1 file, a Windows-1252 file,
a UTF-16 file, an empty file, a symlink, a hard link, an HTML page, an .rst page, a hidden .git folder, and one
`--big-mb` MB log whose answer line sits near its end), then runs, each as its own process:
`ettin-rerank index DIR -o IDX`, `ettin-rerank search IDX QUERY` (bundled reranker) and
`ettin-rerank search DIR QUERY` (the folder read in memory). Reports each command's exit code,
wall time, peak RSS (getrusage of a wrapper's only child) and stderr (the one skip warning), and
whether the planted answer is the top hit. The bar: exit 0, one warning, peak < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERY = "which valve failed on pump seventeen during the night shift?"
ANSWER = "ALARM night shift: relief valve V-17 on pump seventeen failed open and was replaced at 03:40."
TOPICS = ["pump", "valve", "pressure", "sensor", "motor", "filter", "tank", "pipe", "meter", "boiler"]
WORDS = ["checked", "reading", "normal", "flow", "level", "cleaned", "logged", "stable", "shift", "operator"]
# Peak RSS of exactly one command: a wrapper process whose only child is that command.
WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)"
)


def build_folder(root: Path, big_mb: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "notes").mkdir()
    for i in range(190):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(rng.choice(WORDS + TOPICS) for _ in range(rng.randint(20, 300)))
        (root / "notes" / f"note{i:03d}.md").write_text(f"# Note {i} on the {topic}\n{body}\n")
    (root / "blob.bin").write_bytes(bytes(rng.randrange(256) for _ in range(65536)))
    (root / "latin1.txt").write_bytes("Relevé de pression: vanne fermée, débit réduit.\n".encode("latin-1"))
    (root / "utf16.txt").write_bytes("Pump seventeen inspection notes, saved as UTF-16.\n".encode("utf-16"))
    (root / "windows.txt").write_bytes("“Pump” notes – saved by a Windows editor.\n".encode("cp1252"))
    (root / "empty.txt").write_bytes(b"")
    (root / "page.html").write_text(
        "<html><head><title>Valve guide</title><script>var x = 1;</script></head>"
        "<body><p>Close the relief valve before servicing the pump.</p></body></html>"
    )
    (root / "guide.rst").write_text("Pump guide\n==========\n\nPrime the pump before starting the motor.\n")
    os.symlink(root / "guide.rst", root / "guide-link.rst")
    os.link(root / "page.html", root / "page-copy.html")
    big = root / "plant.log"
    target = big_mb * 1024 * 1024
    with big.open("w", encoding="utf-8") as handle:
        written, line_number, planted = 0, 0, False
        while written < target:
            line_number += 1
            if not planted and written > target * 0.95:
                line, planted = ANSWER + "\n", True
            else:
                line = (
                    f"{line_number:09d} {rng.choice(TOPICS)} "
                    + " ".join(rng.choice(WORDS) for _ in range(10))
                    + "\n"
                )
            handle.write(line)
            written += len(line)
    files = sum(len(names) for _, _, names in os.walk(root)) - 1  # .git/HEAD is hidden
    return {"files": files, "big_file_bytes": big.stat().st_size}


def run(command: list[str], env: dict) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env)
    *stderr, peak_kib = done.stderr.rstrip("\n").split("\n")
    return {
        "command": " ".join(command[1:]),
        "exit_code": done.returncode,
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(int(peak_kib) / 1024, 1),
        "stderr": "\n".join(stderr),
        "stdout_head": done.stdout.splitlines()[:4],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench-results/messy_folder.json"))
    parser.add_argument("--keep", action="store_true", help="keep the folder and index (printed)")
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("ettin-rerank"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    work = Path(tempfile.mkdtemp(prefix="messy-folder-"))
    folder, index = work / "docs", work / "index"
    started = time.perf_counter()
    report = {"folder": build_folder(folder, args.big_mb)}
    report["folder"]["build_s"] = round(time.perf_counter() - started, 1)
    report["index"] = run([cli, "index", str(folder), "-o", str(index)], env)
    report["search_index"] = run([cli, "search", str(index), QUERY, "-n", "3"], env)
    report["search_folder"] = run([cli, "search", str(folder), QUERY, "-n", "3"], env)
    for step in ("search_index", "search_folder"):
        top = report[step]["stdout_head"][:2]
        report[step]["answer_first"] = bool(top) and "plant.log" in top[0] and "V-17" in " ".join(top)
    peaks = [report[s]["peak_rss_mib"] for s in ("index", "search_index", "search_folder")]
    report["bar"] = {
        "all_exit_0": all(report[s]["exit_code"] == 0 for s in ("index", "search_index", "search_folder")),
        "one_warning_each": all(
            report[s]["stderr"].count("warning: skipped") == 1 for s in ("index", "search_folder")
        ),
        "peak_rss_mib": max(peaks),
        "under_1.5_GB": max(peaks) < 1536,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if args.keep:
        print(f"kept {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
