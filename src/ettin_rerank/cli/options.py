"""What the commands share: the one reranker loader and its flags, flags whose defaults are read
from the library, and commands whose flags are added only when they run.

A flag's default is written once, where the library decides it (a config dataclass's field, a
function's parameter); `defaults_of` reads it from there, and `call_with_flags` hands the parsed
flags back to the same dataclass or function, each flag named after the field it sets.

Parsing stays light (`--help` in well under a second): a command adds its flags only when it is the
one that runs (`CommandParser`), and the defaults of library code that imports torch, fastapi or
pyarrow are decided in `ettin_rerank.config`, standard-library modules that the library and the CLI
both import. The library itself is imported when a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from ..config.loading import AUTO_DTYPE, AUTO_DTYPE_COMMANDS, QUANTIZE_MODES, LoadingOptions
from ..config.retrieval import DEFAULT_DENSE_MODEL
from ..models import ENV_VAR, ModelChoice, resolve_model

if TYPE_CHECKING:
    from ..inference.reranker import Reranker

logger = logging.getLogger(__name__)

T = TypeVar("T")

MODEL_HELP = f"model directory or Hub id (default: ${ENV_VAR}, else the bundled model)"
DATASET_HELP = "BEIR dataset directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)"
# Other libraries' bars and log lines, off for the commands that show ours (`show_progress`): ours
# say what runs (set before transformers or huggingface_hub is imported, which read them then).
QUIET_LIBRARIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def defaults_of(target: Callable[..., Any]) -> SimpleNamespace:
    """The defaults declared by a config dataclass's fields or by a function's parameters."""
    if dataclasses.is_dataclass(target):
        values = {}
        for field in dataclasses.fields(target):
            if field.default is not dataclasses.MISSING:
                values[field.name] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                values[field.name] = field.default_factory()
        return SimpleNamespace(**values)
    parameters = inspect.signature(target).parameters.values()
    return SimpleNamespace(**{p.name: p.default for p in parameters if p.default is not p.empty})


def call_with_flags(target: Callable[..., T], args: argparse.Namespace, **overrides: Any) -> T:
    """`target` (a function or a config dataclass) called with the parsed flags whose dest names one
    of its parameters, then `overrides`; the parameters no flag sets keep their own defaults."""
    names = inspect.signature(target).parameters
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return target(**(given | overrides))


class Flags:
    """Flags that take their defaults from one `defaults_of` namespace, bound once per group.

    `flags.add("--some-name", help)` sets `some_name` (or `dest=`), the field or parameter whose
    default it takes from `defaults`; its type is that default's unless given (`type=`, `choices=`,
    `action=`).
    """

    def __init__(self, parser: Any, defaults: SimpleNamespace):
        self.parser = parser  # a parser, an argument group or a mutually exclusive group
        self.defaults = defaults

    def add(self, flag: str, help: str | None = None, **kwargs: Any) -> None:
        dest = kwargs.pop("dest", flag.lstrip("-").replace("-", "_"))
        default = getattr(self.defaults, dest)
        if default is not None and not {"type", "choices", "action"} & kwargs.keys():
            kwargs["type"] = type(default)
        self.parser.add_argument(flag, dest=dest, default=default, help=help, **kwargs)


def add_model_argument(parser: Any, *names: str, **kwargs: Any) -> None:
    """The model to use; `ettin_rerank.models` resolves an absent one (environment, then bundled)."""
    parser.add_argument(*names, help=MODEL_HELP, **kwargs)


def add_loading_options(parser: argparse.ArgumentParser, batch_tokens: bool = True) -> None:
    """The flags `load_reranker` reads: where and how the reranker runs. `serve` has its own
    `--batch-tokens` (the scheduler's budget, `ServerSettings.batch_tokens`), so it passes False."""
    loading = defaults_of(LoadingOptions)  # what loading does when a flag is not given
    if command_name(parser) in AUTO_DTYPE_COMMANDS:
        loading.dtype = AUTO_DTYPE
    flags = Flags(parser, loading)
    flags.add("--device", "torch device (default: %(default)s)")
    flags.add(
        "--dtype",
        "encoder dtype: float32 (exact), bfloat16, float16, or auto: bfloat16 where the CPU/GPU has native "
        "bf16 kernels, else float32; bfloat16 on a CPU without them runs float32 (default: %(default)s)",
    )
    flags.add("--max-length", "tokens per pair (default: the model's)", type=int)
    quantize_modes = [mode for mode in QUANTIZE_MODES if mode]
    flags.add("--quantize", "int8 linear layers (CPU, float32)", choices=quantize_modes)
    flags.add(
        "--threads",
        "torch CPU threads, process-wide (default: torch's)",
        dest="num_threads",
        metavar="THREADS",
        type=int,
    )
    if batch_tokens:
        parser.add_argument(
            "--batch-tokens",
            dest="loading_batch_tokens",
            metavar="BATCH_TOKENS",
            default=loading.batch_tokens,
            type=int,
            help="real tokens per batch (default: the engine's, 2048 on CPU)",
        )
    else:
        parser.set_defaults(loading_batch_tokens=None)


def command_name(parser: argparse.ArgumentParser) -> str:
    """The command a subparser belongs to: argparse names it last in `prog` ("ettin-rerank search")."""
    return parser.prog.rsplit(" ", 1)[-1]


def load_reranker(choice: ModelChoice, args: argparse.Namespace | None = None) -> Reranker:
    """The one place a command loads its reranker.

    `choice` comes from `ettin_rerank.models` (--model, then $ETTIN_RERANK_MODEL, then the bundled
    model). With `args`, the flags of `add_loading_options` apply; without (`info`), the library's
    defaults. torch's thread count changes only when --threads is given.
    """
    # torch is imported here, when a command loads its model, never while flags are parsed
    from ..inference.reranker import Reranker

    logger.info("loading %s", choice.describe())
    if args is None:
        return Reranker.from_pretrained(choice.name_or_path)
    return Reranker.from_pretrained(
        choice.name_or_path,
        device=args.device,
        dtype=args.dtype,
        max_length=args.max_length,
        quantize=args.quantize,
        num_threads=args.num_threads,
        batch_tokens=args.loading_batch_tokens,
    )


def optional_reranker(args: argparse.Namespace) -> Reranker | None:
    """The reranker, or None with --no-rerank or when no model is named and none is bundled."""
    choice = None if args.no_rerank else resolve_model(args.model)
    return load_reranker(choice, args) if choice else None


def check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bars (they show only on a terminal anyway)"
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Our own bars: on a terminal, unless --quiet. Other libraries' bars and log lines are off."""
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged PDF is counted in our one warning
    return not args.quiet and sys.stderr.isatty()


def add_dataset_argument(parser: argparse.ArgumentParser, dest: str = "dataset_dir") -> None:
    parser.add_argument(dest, metavar="dataset_dir", type=Path, help=DATASET_HELP)


def add_dense_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dense-model", help=f"bi-encoder for --first-stage dense/hybrid (default {DEFAULT_DENSE_MODEL})"
    )


VERBOSE_HELP = "more logging (-v info, -vv debug)"
COMMAND_VERBOSITY = "command_verbose"  # -v given after the command; `cli.main` adds it to `verbose`


DISTRIBUTION = "ettin-rerank"


def extra_needed(extra: str, error: ImportError | str) -> str:
    return f"this command needs the {extra} extra: pip install '{DISTRIBUTION}[{extra}]' ({error})"


def missing_from_extra(extra: str) -> list[str]:
    """The packages of an extra that are not installed, read from the installed package's metadata
    (pyproject's extras, the one list of them). Empty when the package runs from a source tree
    without metadata: the command's own imports then say what is missing."""
    import importlib.metadata  # 40 ms: paid by the commands that need an extra, when they run

    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        specifier, _, marker = requirement.partition(";")
        if f'extra == "{extra}"' not in marker.replace("'", '"'):
            continue
        name = re.split(r"[^A-Za-z0-9._-]", specifier.strip(), maxsplit=1)[0]  # PEP 508: the name leads
        if name == DISTRIBUTION:
            continue  # an extra made of other extras (`dev`)
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


class CommandParser(argparse.ArgumentParser):
    """A command's parser that adds its flags only when that command runs (`add_arguments=`).

    Building them can be slow (a default read from the library) or can need an optional extra;
    added on demand, they cost the other commands nothing at startup. `needs_extra=` names the
    extra the command's code needs (`server`, `train`, `eval`): without it, the command says what to
    install instead of failing with a traceback (see `cli.main`).
    Every command also takes `-v/--verbose`, so it may follow the command's own arguments.
    """

    def __init__(
        self,
        *args: Any,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        needs_extra: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments
        self.needs_extra = needs_extra
        # its own dest: a subparser's defaults overwrite the main parser's values (`-v serve -v`: 2)
        self.add_argument(
            "-v", "--verbose", dest=COMMAND_VERBOSITY, action="count", default=0, help=VERBOSE_HELP
        )
        self.set_defaults(needs_extra=needs_extra)

    def add_pending_arguments(self) -> None:
        """Add the flags this command defers (once); parsing its arguments calls this first."""
        if self._add_arguments is not None:
            add_arguments, self._add_arguments = self._add_arguments, None
            try:
                add_arguments(self)
            except ImportError as error:
                if self.needs_extra is None:
                    raise
                self.error(extra_needed(self.needs_extra, error))

    def parse_known_args(self, args=None, namespace=None):
        self.add_pending_arguments()
        return super().parse_known_args(args, namespace)
