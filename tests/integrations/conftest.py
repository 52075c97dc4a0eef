"""Shared data and models for the LangChain / LlamaIndex / Cohere-client tests.

The documents are obvious on purpose: the bundled reranker (a small model distilled on five domains)
must put the right one first, so a broken integration (wrong order, wrong index mapping,
scores of the wrong documents) fails these tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ettin_rerank.inference.calibration import Calibration
from ettin_rerank.models import bundled_model_dir

DOCUMENTS = [
    "The mitochondria is the powerhouse of the cell.",
    "Paris is the capital and largest city of France.",
    "Bananas are rich in potassium.",
    "Python is a programming language.",
]
QUERY = "What is the capital of France?"
ANSWER = 1  # the index of the document that answers QUERY

# About 355 tokens about housework: past the bundled model's 256-token limit, so an answer
# appended after it is invisible to a truncated pair.
FILLER = " ".join(
    [
        "Descale the kettle with white vinegar once a month.",
        "Tomato seedlings need plenty of sunlight and regular watering.",
        "A cast iron pan should be dried right after washing to prevent rust.",
        "Fold the towels in thirds so they fit on the narrow shelf.",
        "The lawn mower blade is sharpened every spring.",
        "Compost needs a balance of green and brown material.",
    ]
    * 5
)
LONG_DOCUMENTS = [
    "The mitochondria is the powerhouse of the cell.",
    FILLER + " Paris is the capital and largest city of France.",  # the answer, past the limit
    "Bananas are rich in potassium.",
    FILLER,
]
LONG_ANSWER = 1

# A calibration that is visibly not the sigmoid: p = 1 / (1 + exp(-(0.5 * score - 1)))
TEST_CALIBRATION = Calibration("platt", {"a": 0.5, "b": -1.0}, {"note": "integration tests"})


@pytest.fixture(scope="session")
def bundled_reranker():
    from ettin_rerank import Reranker

    directory = bundled_model_dir()
    if directory is None:
        pytest.skip("this install carries no bundled model")
    return Reranker.from_pretrained(directory)


@pytest.fixture(scope="session")
def calibrated_tiny_dir(tiny_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random tiny model with a calibration.json beside its weights."""
    directory = tmp_path_factory.mktemp("calibrated-tiny") / "model"
    shutil.copytree(tiny_reranker_dir, directory)
    TEST_CALIBRATION.save(directory)
    return directory
