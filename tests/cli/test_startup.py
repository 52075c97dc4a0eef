"""Startup conventions of `ettin-rerank`: `--version`, `-v` after the command, help without the engine,
and flag defaults read from the library's source that stay equal to the imported ones."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

import ettin_rerank
from ettin_rerank import cli
from ettin_rerank.cli import options, source_defaults

# what `--help` must never load: the engine, the server, training and the extras
HEAVY_MODULES = (
    "torch",
    "fastapi",
    "uvicorn",
    "pyarrow",
    "ray",
    "sentence_transformers",
    "transformers",
    "matplotlib",
    "sklearn",
    "scipy",
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def command_names() -> list[str]:
    subparsers = cli.build_parser()._subparsers._group_actions[0]
    return list(subparsers.choices)


def test_version_prints_the_installed_package_version():
    result = subprocess.run(
        [sys.executable, "-m", "ettin_rerank", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ettin-rerank {importlib.metadata.version('ettin-rerank')}"
    assert ettin_rerank.__version__ == importlib.metadata.version("ettin-rerank")


def test_help_of_every_command_imports_no_engine_server_or_extra():
    """`--help` answers from the parser alone: not torch, not the server, training or an extra; the
    top-level help and `--version` not even numpy."""
    result = run_python(
        f"""
        import contextlib, io, json, sys
        from ettin_rerank import cli

        def loaded(argv, modules):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    cli.main(argv)
                except SystemExit as exit:
                    assert exit.code == 0, (argv, exit.code)
            assert out.getvalue().strip(), argv
            return [m for m in modules if m in sys.modules]

        heavy = {list(HEAVY_MODULES)!r}
        found = {{" ".join(a): loaded(a, heavy + ["numpy"]) for a in (["--help"], ["--version"])}}
        subparsers = cli.build_parser()._subparsers._group_actions[0]
        for command in subparsers.choices:
            found[command + " --help"] = loaded([command, "--help"], heavy)
        print(json.dumps(found))
        """
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert set(found) >= {"--help", "search --help", "rank --help", "serve --help", "distill --help"}
    assert {argv: modules for argv, modules in found.items() if modules} == {}


def test_verbose_is_accepted_after_the_command(bundled_model_args):
    quiet = subprocess.run(
        [sys.executable, "-m", "ettin_rerank", "info", *bundled_model_args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    verbose = subprocess.run(
        [sys.executable, "-m", "ettin_rerank", "info", *bundled_model_args, "-v"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and verbose.returncode == 0, verbose.stderr
    assert "INFO" not in quiet.stderr
    assert "INFO ettin_rerank.cli.options: loading" in verbose.stderr


@pytest.fixture
def bundled_model_args() -> list[str]:
    from ettin_rerank.models import resolve_model

    choice = resolve_model(None)
    if choice is None:
        pytest.skip("no model is bundled")
    return [choice.name_or_path]


def test_verbose_before_and_after_the_command_add_up(monkeypatch):
    class Configured(Exception):
        pass

    def configure_logging(verbosity: int) -> None:
        raise Configured(verbosity)

    monkeypatch.setattr(cli, "configure_logging", configure_logging)
    for argv, expected in (
        (["info"], 0),
        (["info", "-v"], 1),
        (["-v", "search", "docs", "a question", "-v"], 2),
        (["rank", "-q", "x", "-vv"], 2),
    ):
        with pytest.raises(Configured) as raised:
            cli.main(argv)
        assert raised.value.args == (expected,), argv


def test_a_missing_extra_is_named_before_the_command_runs(monkeypatch, capsys, tmp_path):
    """Without its extra a command stops at once with the install line, before loading anything."""
    requirements = ["torch==2.13.0", 'no-such-package-for-ettin>=1; extra == "eval"']
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: requirements)
    code = cli.main(["bench", "--model", str(tmp_path / "absent"), "--data", str(tmp_path / "absent")])
    assert code == 2
    error = capsys.readouterr().err
    assert "pip install 'ettin-rerank[eval]'" in error and "no-such-package-for-ettin" in error


def test_every_installed_extra_is_complete_here():
    """The test environment installs `[dev]`: every extra it includes resolves, so no command refuses."""
    for extra in ("eval", "server", "train", "langchain", "llamaindex", "pdf", "onnx", "openvino"):
        assert options.missing_from_extra(extra) == [], extra


def plain(value):
    """A value with dataclass instances and namespaces turned into dicts, for comparison."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, SimpleNamespace):
        value = vars(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(item) for item in value)
    return value


def test_defaults_read_from_source_equal_the_imported_ones():
    """Every default and choice a command reads from the library's source (without importing it) is
    what importing the library gives."""
    source_defaults.READ.clear()
    subparsers = cli.build_parser()._subparsers._group_actions[0]
    for parser in subparsers.choices.values():
        parser.add_pending_arguments()
    assert len(source_defaults.READ) >= 15, sorted(source_defaults.READ)
    for target, read in source_defaults.READ.items():
        module_name, qualname = target.split(":")
        value = importlib.import_module(module_name)
        for part in qualname.split("."):
            value = getattr(value, part)
        if callable(value) and not isinstance(value, dict):
            expected = vars(options.defaults_of(value))
        else:
            expected = value
        assert plain(read) == plain(expected), target


def parse_module(tmp_path, source: str) -> source_defaults.ModuleSource:
    path = tmp_path / "example.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return source_defaults.ModuleSource("ettin_rerank.example", path)


def test_source_reader_reads_plain_data(tmp_path):
    module = parse_module(
        tmp_path,
        """
        from dataclasses import dataclass, field

        A = {"x": 1, "y": 2}
        MODES = (*A, "z")
        LIMIT = 50 * 1024 * 1024
        NEGATIVE = -1.5

        @dataclass(frozen=True)
        class Size:
            name: str
            layers: int = 2

        SIZES = {size.name: size for size in (Size("s"), Size("m", 4))}

        @dataclass
        class Config:
            path: str
            modes: list[str] = field(default_factory=lambda: list(MODES))
            extra: dict = field(default_factory=dict)
            limit: int = LIMIT

        def run(path, k=10, *, mode=MODES[-1] if False else "z", flag=not True):
            pass
        """,
    )
    assert module.binding("MODES") == ("x", "y", "z")
    assert module.binding("LIMIT") == 52428800 and module.binding("NEGATIVE") == -1.5
    assert {name: vars(size) for name, size in module.binding("SIZES").items()} == {
        "s": {"name": "s", "layers": 2},
        "m": {"name": "m", "layers": 4},
    }
    fields = module.dataclass_fields(module.definition("Config"))
    assert fields["path"] is source_defaults.NO_VALUE
    assert {k: v for k, v in fields.items() if k != "path"} == {
        "modes": ["x", "y", "z"],
        "extra": {},
        "limit": 52428800,
    }
    with pytest.raises(source_defaults.NotReadable, match="is not plain data"):
        module.parameter_defaults(module.definition("run"))  # a conditional expression


def test_source_reader_refuses_what_is_not_plain_data(tmp_path):
    module = parse_module(
        tmp_path,
        """
        import logging

        logger = logging.getLogger(__name__)

        def helper():
            return 3

        COMPUTED = helper()
        """,
    )
    with pytest.raises(source_defaults.NotReadable, match=r"example\.py:4: .*getLogger"):
        module.binding("logger")
    with pytest.raises(source_defaults.NotReadable, match=r"example\.py:9: helper\(\) is a call"):
        module.binding("COMPUTED")
    with pytest.raises(source_defaults.NotReadable, match="binds no 'ABSENT'"):
        module.binding("ABSENT")
    with pytest.raises(source_defaults.NotReadable, match="not part of ettin_rerank"):
        source_defaults.read_constant("json:dumps")
