.PHONY: install setup test lint default-model permissive-model

# What the main job needs: the library, `rank`, `search` with BM25 and the bundled model (README: Set up).
install:
	python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 && .venv/bin/pip install -e .

# What the tests need: every extra, the test tools and the clients the recipes are tested with.
setup:
	python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 && .venv/bin/pip install -e ".[dev]"

test:
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q

# What CI checks besides the tests: lint, formatting, and types ([tool.mypy] in pyproject.toml).
lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Rebuild the bundled reranker with the project's own distillation pipeline (see scripts/build_default_model.py).
default-model:
	HF_HUB_OFFLINE=1 .venv/bin/python scripts/build_default_model.py

# The variant trained only on text whose licence allows commercial use, exported to
# runs/permissive-model/export (issue 21; scripts/build_default_model.py --variant permissive).
permissive-model:
	HF_HUB_OFFLINE=1 .venv/bin/python scripts/build_default_model.py --variant permissive
