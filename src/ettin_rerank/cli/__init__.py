"""The `ettin-rerank` command line: thin commands over the library.

Each submodule registers its commands with `register(subparsers)`; this module is
the only place in the package that configures logging.

Startup stays light: the command modules import neither torch nor an extra at module level, and
each command adds its flags only when it is the one that runs (`options.CommandParser`), so
`--help`, `--version` and a mistyped flag answer without loading the engine.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from .. import __version__
from .options import COMMAND_VERBOSITY, VERBOSE_HELP, CommandParser, extra_needed, missing_from_extra

COMMAND_MODULES = (
    "core",
    "evaluate",
    "search",
    "resident",
    "cache",
    "calibrate",
    "serve",
    "train",
    "bench",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ettin-rerank",
        description="Fast, exact cross-encoder reranking with the Ettin family.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_level(verbosity: int) -> int:
    return logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def configure_logging(verbosity: int) -> None:
    logging.basicConfig(level=log_level(verbosity), format=LOG_FORMAT, stream=sys.stderr)


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    """The parsed command; `command_line` keeps `argv` (what a resident process parses again)."""
    args = build_parser().parse_args(argv)
    args.verbose += getattr(args, COMMAND_VERBOSITY, 0)  # -v before and after the command add up
    args.command_line = list(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(sys.argv[1:] if argv is None else list(argv))
    configure_logging(args.verbose)
    return run_command(args, lambda: args.handler(args))


def run_command(args: argparse.Namespace, run: Callable[[], int | None]) -> int:
    """`run` (a command's handler) with the one mapping of failures to messages and exit codes."""
    missing = missing_from_extra(args.needs_extra) if args.needs_extra else []
    if missing:  # say so before any work, not after a long run fails at its last step
        print(f"error: {extra_needed(args.needs_extra, 'missing: ' + ', '.join(missing))}", file=sys.stderr)
        return 2
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`search ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141
    except ImportError as error:
        if args.needs_extra is None or os.environ.get("ETTIN_RERANK_TRACEBACK"):
            raise
        print(f"error: {extra_needed(args.needs_extra, error)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, TypeError, RuntimeError, OSError) as error:
        if os.environ.get("ETTIN_RERANK_TRACEBACK"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
