"""The integrations are optional: the package imports without either framework, and each
integration module fails with the install command when its own framework is missing.

A missing package is simulated with `sys.modules[name] = None` (what Python does for a blocked
import) in a fresh interpreter, so this process's imports do not leak in.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_the_package_imports_no_framework():
    result = run_python(
        """
        import sys
        import ettin_rerank, ettin_rerank.integrations
        from ettin_rerank.integrations import load_reranker
        loaded = [m for m in ("langchain_core", "llama_index") if m in sys.modules]
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("blocked", "module", "extra", "other_module"),
    [
        ("langchain_core", "langchain", "langchain", "llama_index"),
        ("llama_index", "llama_index", "llamaindex", "langchain"),
    ],
)
def test_a_missing_framework_names_the_extra_to_install(blocked, module, extra, other_module):
    pytest.importorskip(f"ettin_rerank.integrations.{other_module}")  # the other framework is installed
    result = run_python(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if it were not installed
        import ettin_rerank, ettin_rerank.integrations
        import ettin_rerank.integrations.{other_module}  # the other integration does not need it
        try:
            import ettin_rerank.integrations.{module}
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("the import should have failed")
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'ettin-rerank[{extra}]'" in result.stdout
