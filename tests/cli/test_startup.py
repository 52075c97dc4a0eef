"""Startup conventions of `ettin-rerank`: `--version`, `-v` after the command, help without the engine,
quickly, and settings modules (`ettin_rerank.config`) that import only the standard library."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import pkgutil
import subprocess
import sys
import textwrap
import time

import pytest

import ettin_rerank
from ettin_rerank import cli, config
from ettin_rerank.cli import options

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


# what no settings module may import: they are read by `--help` and by every library module
NOT_IN_CONFIG = ("torch", "numpy", "fastapi", "pyarrow", "tokenizers")


def test_config_modules_import_only_the_standard_library():
    """Importing every `ettin_rerank.config.*` module loads none of torch, numpy, fastapi, pyarrow,
    tokenizers: the CLI reads its defaults from them before any command runs."""
    names = sorted(f"{config.__name__}.{module.name}" for module in pkgutil.iter_modules(config.__path__))
    assert {"ettin_rerank.config.loading", "ettin_rerank.config.server"} <= set(names)
    result = run_python(
        f"""
        import importlib, json, sys
        for name in {names!r}:
            importlib.import_module(name)
        print(json.dumps([m for m in {list(NOT_IN_CONFIG)!r} if m in sys.modules]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_command_help_answers_within_a_second():
    """`search --help` (the main job, with the loading flags) in a fresh interpreter: under 1 s,
    interpreter start included, best of three runs (the machine may be busy)."""
    command = [sys.executable, "-m", "ettin_rerank", "search", "--help"]
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        durations.append(time.perf_counter() - start)
        assert result.returncode == 0, result.stderr
    assert min(durations) < 1.0, durations
