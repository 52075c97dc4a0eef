"""Settings and their defaults, each decided once, in modules that import only the standard library.

The library and the CLI both import from here, so `ettin-rerank CMD --help` shows the library's
own defaults without importing torch, fastapi or pyarrow (as vLLM's `envs.py` keeps its settings
free of heavy imports). Nothing in this package may import anything outside the standard library
and this package (tests/cli/test_startup.py holds it to that).
"""
