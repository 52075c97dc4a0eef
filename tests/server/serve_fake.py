"""`ettin-rerank serve` with the test fake scorer in place of a model, for tests/server/test_process.py.

    python tests/server/serve_fake.py SECONDS_PER_PAIR [serve options...]

Everything but the scorer is the real command: its settings, the uvicorn server and its
graceful shutdown. The fake lives under tests/, so it is swapped in here rather than offered by
the installed command line.
"""

from __future__ import annotations

import sys

from fake_scorer import FakeScorer  # this script's folder is on sys.path

from ettin_rerank import cli
from ettin_rerank.cli import serve


def main() -> int:
    seconds_per_pair, options = float(sys.argv[1]), sys.argv[2:]
    serve.load_scorer = lambda args: FakeScorer(
        max_length=args.max_length or 512, seconds_per_pair=seconds_per_pair
    )
    return cli.main(["serve", *options])


if __name__ == "__main__":
    sys.exit(main())
