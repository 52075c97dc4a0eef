"""Fixtures for retrieval tests: a tiny BEIR dataset; SciFact comes from tests/conftest.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_DOCS = [
    ("d1", "Cats", "Cats are small domesticated carnivorous mammals that purr."),
    ("d2", "Dogs", "Dogs are loyal domesticated animals that bark and fetch."),
    ("d3", "", "Photosynthesis converts sunlight, water and carbon dioxide into glucose in plants."),
    ("d4", "Volcanoes", "A volcano erupts molten rock called lava from the Earth's crust."),
    ("d5", "Running", "Running every day improves cardiovascular health and endurance."),
    ("d6", "Chess", "Chess is a strategy board game played between two players."),
    ("d7", "Bread", "Bread is baked from flour, water and yeast."),
    ("d8", "Oceans", "Oceans cover most of the Earth and hold salty water."),
]
TINY_QUERIES = [
    ("q1", "why do cats purr"),
    ("q2", "how do plants make glucose from sunlight"),
    ("q3", "volcano lava eruption"),
    ("q4", "board game strategy"),
]
TINY_QRELS = [("q1", "d1", 1), ("q2", "d3", 2), ("q2", "d8", 0), ("q3", "d4", 1), ("q4", "d6", 0)]


def write_tiny_beir(directory: Path, split: str = "test") -> Path:
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with (directory / "corpus.jsonl").open("w") as handle:
        for doc_id, title, text in TINY_DOCS:
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w") as handle:
        for query_id, text in TINY_QUERIES:
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with (directory / "qrels" / f"{split}.tsv").open("w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, doc_id, score in TINY_QRELS:
            handle.write(f"{query_id}\t{doc_id}\t{score}\n")
    return directory


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_tiny_beir(tmp_path / "tiny")
