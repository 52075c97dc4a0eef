"""The resident search process: `search` leaves its model loaded, so the next search reranks at once.

A search in a fresh process spends about 2 s on 2 cores before it reranks anything: importing torch
(1.6 s) and loading and warming the model (0.5 s). So a search that loaded the model then starts a
resident process (`ettin-rerank resident run`, detached) that loads the same model once and waits
on a Unix socket. Later searches with the same model and loading flags hand it their command line
and working directory and print what it sends back; they import neither torch nor numpy. It runs
the search code a fresh process runs (`search.search_documents`), so it prints the same; it keeps
the last indexes it opened in memory (`SearchIndex.load`) and exits after `--keep-loaded` idle
minutes, or on `ettin-rerank resident stop`.

Files under `cache_dir()/resident/`, a directory only its user may enter (the socket has the trust
of the user's own files):

    <key>.sock   the socket; <key> digests all that decides the scores (`resident_key`)
    <key>.lock   held (flock) by the resident for its whole life: at most one per key
    <key>.log    the resident's log

Protocol: one JSON line from the client ({"op": "search" | "status" | "stop", ...}), then JSON lines
from the resident: {"out": text} and {"err": text} as the search writes them, and a last
{"exit": code}; {"refused": why} when the command is not one it runs (another model, say), and the
client then searches in its own process. Anything that goes wrong with a resident means the same:
the search runs in the client's process, as if there were none.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config.paths import cache_dir
from ..config.retrieval import keep_loaded_minutes
from ..models import require_model, resolve_model
from .options import add_loading_options, add_model_argument

if TYPE_CHECKING:
    from ..inference.reranker import Reranker

logger = logging.getLogger(__name__)

# The loading flags a resident is started with: (flag, argparse dest). With the model they decide the
# scores, so they are its key; a search with other values gets (or starts) another resident.
LOADING_FLAGS = (
    ("--device", "device"),
    ("--dtype", "dtype"),
    ("--max-length", "max_length"),
    ("--quantize", "quantize"),
    ("--threads", "num_threads"),
    ("--batch-tokens", "loading_batch_tokens"),
)
MAX_SOCKET_PATH = 100  # bytes; AF_UNIX paths stop at 107 on Linux, 103 on macOS
CONNECT_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 10.0  # a client that connects and says nothing does not hold the resident
POLL_S = 1.0  # how often an idle resident checks whether its time is up
LOG_LIMIT_BYTES = 1_000_000  # a resident's log is started afresh beyond this


def register(subparsers) -> None:
    subparsers.add_parser(
        "resident",
        help="list or stop the processes `search` keeps its model loaded in",
        description="After a search loads its model, it leaves a resident process holding the model, so "
        "the next searches with the same model and flags rerank at once (search --keep-loaded MINUTES; "
        "0 keeps none). `resident` lists them (model, memory, idle time), `resident stop` ends them all. "
        "`resident run` is what `search` starts.",
        add_arguments=add_resident_arguments,
    ).set_defaults(handler=run_resident)


def add_resident_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "stop", "run"), default="list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(no_rerank=False)  # `resident run` loads what `search` loads
    add_model_argument(parser, "--model", "-m")
    add_keep_loaded_argument(parser)
    add_loading_options(parser)


def add_keep_loaded_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-loaded",
        type=float,
        default=keep_loaded_minutes(),
        metavar="MINUTES",
        help="after a search that loaded the model, keep it loaded in a background process for this many "
        "idle minutes, so the next searches with the same model and flags answer without loading it "
        "(`ettin-rerank resident` lists them); 0: none (default %(default)g; $ETTIN_RERANK_KEEP_LOADED)",
    )


@dataclass(frozen=True)
class Address:
    """Where the resident for one key listens, locks and logs."""

    directory: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.directory / f"{self.key}.sock"

    @property
    def lock(self) -> Path:
        return self.directory / f"{self.key}.lock"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.key}.log"


def resident_dir() -> Path:
    return cache_dir() / "resident"


def model_identity(name_or_path: str) -> dict[str, Any]:
    """A local model directory by its absolute path and its files' sizes and times (a model retrained
    in place is another model); anything else by its Hub id."""
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return {"hub": name_or_path}
    files = {}
    for entry in sorted(path.iterdir()):
        if entry.is_file():
            stat = entry.stat()
            files[entry.name] = [stat.st_size, stat.st_mtime_ns]
    return {"path": os.path.abspath(path), "files": files}


def resident_key(model: str, args: argparse.Namespace) -> str:
    """The digest of all that decides a resident's scores and where it keeps things."""
    identity = {
        "ettin_rerank": __version__,
        "python": sys.executable,
        "cache_dir": str(cache_dir()),
        "model": model_identity(model),
        "loading": {dest: getattr(args, dest) for _, dest in LOADING_FLAGS},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def address_of(args: argparse.Namespace) -> Address | None:
    """The resident a search with these arguments would use, or None when it can use none (no
    reranking, no model, no Unix sockets, a cache path too long for one)."""
    if args.no_rerank or not hasattr(socket, "AF_UNIX"):
        return None
    choice = resolve_model(args.model)
    if choice is None:
        return None
    address = Address(resident_dir(), resident_key(choice.name_or_path, args))
    if len(os.fsencode(address.socket)) > MAX_SOCKET_PATH:
        logger.info("no resident process: its socket path would be too long (%s)", address.socket)
        return None
    return address


# --- the client: a search hands its command line to the resident ---------------------------------


def search_in_resident(args: argparse.Namespace) -> int | None:
    """Run the search in its resident process and print what it prints: the exit code, or None when
    there is no resident to run it (the caller searches in its own process)."""
    address = address_of(args)
    if address is None or not address.socket.exists():
        return None
    request = {
        "op": "search",
        "key": address.key,
        "argv": args.command_line,
        "cwd": os.getcwd(),
        "stderr_tty": sys.stderr.isatty(),
    }
    try:
        connection = _connect(address)
    except OSError as error:  # a resident that has gone, or is still loading its model
        logger.info("no resident at %s (%s)", address.socket, error)
        return None
    with connection:
        return _relay(connection, request, address)


def _connect(address: Address) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_TIMEOUT_S)
        connection.connect(os.fspath(address.socket))
        connection.settimeout(None)  # the answer takes as long as the search
    except OSError:
        connection.close()
        raise
    return connection


def _relay(connection: socket.socket, request: dict[str, Any], address: Address) -> int | None:
    """Print what the resident sends; its exit code, or None when it ran nothing (search here)."""
    printed = False
    for message in _messages(connection, request, address):
        if "out" in message:  # a reader that went away (`| head`) raises here, as in a search of our own
            sys.stdout.write(message["out"])
            printed = True
        elif "err" in message:
            sys.stderr.write(message["err"])
            sys.stderr.flush()
            printed = True
        elif "exit" in message:
            sys.stdout.flush()
            return int(message["exit"])
        elif "refused" in message:
            logger.info("the resident refused the search: %s", message["refused"])
            return None
    if not printed:
        return None  # it answered nothing: search here instead
    raise RuntimeError(f"the resident search process stopped before it finished; see {address.log}")


def _messages(connection: socket.socket, request: dict[str, Any], address: Address) -> Iterator[dict]:
    """The resident's messages until it closes the connection; a reset or a garbled line ends them."""
    try:
        connection.sendall(json.dumps(request).encode() + b"\n")
        for line in connection.makefile("rb"):
            yield json.loads(line)
    except (OSError, ValueError) as error:
        logger.info("the resident at %s failed: %s", address.socket, error)


def _ask(address: Address, request: dict[str, Any]) -> dict[str, Any] | None:
    """One request and its one answer, or None when no resident answers."""
    try:
        with _connect(address) as connection:
            connection.settimeout(REQUEST_TIMEOUT_S)
            connection.sendall(json.dumps(request).encode() + b"\n")
            line = connection.makefile("rb").readline()
        return json.loads(line) if line else None
    except (OSError, ValueError):
        return None


def _lock_is_held(address: Address) -> bool:
    """Whether a resident (running, or still loading its model) holds this key."""
    try:
        descriptor = os.open(address.lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases a lock we took
    return False


def start_resident(args: argparse.Namespace) -> Address | None:
    """Start, detached, the resident for this search's model and flags; None when there is one
    already (running or starting) or the search can use none."""
    address = address_of(args)
    if address is None:
        return None
    try:
        if _lock_is_held(address):
            return None
        _spawn(address, require_model(args.model).name_or_path, args)
    except OSError as error:  # an unwritable cache: the search itself has succeeded all the same
        logger.info("could not start a resident process in %s: %s", address.directory, error)
        return None
    return address


def _spawn(address: Address, model: str, args: argparse.Namespace) -> None:
    _make_private_dir(address.directory)
    command = [sys.executable, "-m", "ettin_rerank", "-v", "resident", "run", "--model", model]
    command += ["--keep-loaded", repr(args.keep_loaded)]
    for flag, dest in LOADING_FLAGS:
        if getattr(args, dest) is not None:
            command += [flag, str(getattr(args, dest))]
    append = address.log.exists() and address.log.stat().st_size < LOG_LIMIT_BYTES
    with open(address.log, "ab" if append else "wb") as log:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=address.directory,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C in it leaves it be
        )


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


# --- the resident ------------------------------------------------------------------------------------


class ClientGone(Exception):  # noqa: N818 (a state, not an error of ours)
    """The client closed its connection: the search it asked for is dropped. Not an OSError, so the
    command's own error handling does not turn it into a message to nobody."""


class _Forward(io.TextIOBase):
    """A stream (stdout or stderr) that sends what is written to the client as it is written."""

    def __init__(self, send: Callable[[dict[str, Any]], None], channel: str, tty: bool):
        self._send, self._channel, self._tty = send, channel, tty

    def write(self, text: str) -> int:
        if text:
            self._send({self._channel: text})
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty  # progress bars show when the client's own stderr is a terminal


class Resident:
    """The loaded reranker, answering one connection at a time until it has been idle too long."""

    def __init__(self, address: Address, reranker: Reranker, idle_minutes: float, model: str):
        self.address, self.reranker, self.model = address, reranker, model
        self.idle_s = idle_minutes * 60
        self.started = datetime.now(UTC)
        self.last_used = time.monotonic()
        self.searches = 0

    def serve(self, server: socket.socket) -> None:
        server.settimeout(min(POLL_S, self.idle_s))
        while time.monotonic() - self.last_used < self.idle_s:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                stop = self._answer(connection)
            self.last_used = time.monotonic()
            if stop:
                logger.info("stopped on request")
                return
        logger.info("idle for %g minutes: exiting", self.idle_s / 60)

    def _answer(self, connection: socket.socket) -> bool:
        """Answer one connection; True when asked to stop."""

        def send(message: dict[str, Any]) -> None:
            try:
                connection.sendall(json.dumps(message).encode() + b"\n")
            except OSError as error:
                raise ClientGone(str(error)) from error

        try:
            connection.settimeout(REQUEST_TIMEOUT_S)
            request = json.loads(connection.makefile("rb").readline())
            connection.settimeout(None)
            op = request.get("op") if isinstance(request, dict) else None
            if op == "stop":
                send({"exit": 0})
                return True
            if op == "status":
                send({"status": self.status()})
            elif op == "search":
                code = self._search(request, send)
                send({"exit": code} if code is not None else {"refused": "another command, model or flags"})
            else:
                send({"refused": f"unknown request {op!r}"})
        except ClientGone as gone:
            logger.info("the client went away: %s", gone)
        except Exception:  # a bad request must not end the resident: log it, answer the next
            logger.exception("a request failed")
        return False

    def _search(self, request: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> int | None:
        """The search's exit code, or None when it is not one this resident runs."""
        from . import parse_command_line, run_command
        from .search import run_search, search_documents

        out = _Forward(send, "out", tty=False)
        err = _Forward(send, "err", tty=bool(request.get("stderr_tty")))
        with (
            contextlib.chdir(request["cwd"]),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),  # "once" warnings show once per search, as in a fresh process
        ):
            try:
                args = parse_command_line(list(request["argv"]))
            except SystemExit as exit_:  # argparse's own message went to err
                return int(exit_.code or 0)
            address = address_of(args) if args.handler is run_search else None
            if address is None or address.key != self.address.key:
                return None  # the client searches in its own process
            self.searches += 1
            with _request_logging(args.verbose, err):
                return run_command(args, lambda: search_documents(args, self.reranker))

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "model": self.model,
            "started": self.started.isoformat(timespec="seconds"),
            "searches": self.searches,
            "idle_s": round(time.monotonic() - self.last_used, 1),
            "keep_loaded_minutes": self.idle_s / 60,
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }


@contextlib.contextmanager
def _request_logging(verbosity: int, stream: io.TextIOBase) -> Iterator[None]:
    """The search's log lines go to its client, at its -v level, as they would in its own process."""
    from . import LOG_FORMAT, log_level

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers, root.level = [handler], log_level(verbosity)
    try:
        yield
    finally:
        root.handlers, root.level = saved


def serve_resident(args: argparse.Namespace) -> int:
    """`resident run`: load the model, then answer searches until idle for --keep-loaded minutes."""
    from .search import load_warm_reranker

    if args.keep_loaded <= 0:
        raise ValueError("resident run needs --keep-loaded above 0")
    model = require_model(args.model).name_or_path
    address = Address(resident_dir(), resident_key(model, args))
    _make_private_dir(address.directory)
    lock = os.open(address.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logger.info("a resident for %s is already running", address.key)
        os.close(lock)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # through `finally`: the socket is removed
    try:
        started = time.monotonic()
        reranker = load_warm_reranker(args)
        if reranker is None:  # `resident run` always names its model: not reached
            raise ValueError("resident run needs a model")
        with contextlib.suppress(FileNotFoundError):
            address.socket.unlink()  # a dead resident's: we hold the lock, so no live one has it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(os.fspath(address.socket))
            os.chmod(address.socket, 0o600)
            server.listen(8)
            logger.info(
                "pid %d: %s loaded in %.1f s, listening on %s",
                os.getpid(),
                model,
                time.monotonic() - started,
                address.socket,
            )
            Resident(address, reranker, args.keep_loaded, model).serve(server)
    finally:
        with contextlib.suppress(FileNotFoundError):
            address.socket.unlink()
        os.close(lock)
    return 0


# --- `resident` / `resident stop` ---------------------------------------------------------------------


def residents() -> list[tuple[Address, dict[str, Any]]]:
    """The residents that answer, with their status; a dead one's socket is removed on the way."""
    directory = resident_dir()
    found = []
    for path in sorted(directory.glob("*.sock")) if directory.is_dir() else []:
        address = Address(directory, path.stem)
        answer = _ask(address, {"op": "status"})
        if answer is not None and "status" in answer:
            found.append((address, answer["status"]))
        elif not _lock_is_held(address):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return found


def run_resident(args: argparse.Namespace) -> int:
    if args.action == "run":
        return serve_resident(args)
    found = residents()
    if args.action == "stop":
        stopped = [status for address, status in found if _ask(address, {"op": "stop"}) is not None]
        if args.json:
            print(json.dumps({"stopped": stopped}, indent=2))
        else:
            print(f"stopped {len(stopped)} resident process(es)")
        return 0
    if args.json:
        print(json.dumps({"residents": [status for _, status in found]}, indent=2))
        return 0
    if not found:
        print("no resident processes (a search that loads its model starts one; see search --keep-loaded)")
        return 0
    for _, status in found:
        left = max(0.0, status["keep_loaded_minutes"] * 60 - status["idle_s"]) / 60
        print(
            f"  pid {status['pid']}: {status['model']}, {status['searches']} searches since {status['started']}, "
            f"{status['peak_memory_mb']} MB peak, exits in {left:.1f} min unless used"
        )
    return 0
