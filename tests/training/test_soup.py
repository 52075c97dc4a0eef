"""`training.soup.average_weights`: the mean of fine-tunings of one model (stage four of the default model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ettin_rerank import Reranker
from ettin_rerank.family import create_random_reranker
from ettin_rerank.modeling.loading import load_checkpoint
from ettin_rerank.training.soup import average_weights

PAIRS = [("what melts at 1234 degrees?", "The zorblax alloy melts at 1,234 degrees Celsius."), ("q", "d")]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, modernbert_tokenizer_dir):
    root = tmp_path_factory.mktemp("runs")
    return [
        create_random_reranker("tiny", modernbert_tokenizer_dir, root / f"run-{seed}", seed=seed)
        for seed in (0, 1)
    ]


def test_the_soup_holds_the_mean_of_every_weight_and_names_its_ingredients(two_runs, tmp_path):
    soup = average_weights(two_runs, tmp_path / "soup")
    states = [load_checkpoint(run).model.state_dict() for run in two_runs]
    averaged = load_checkpoint(soup).model.state_dict()
    assert averaged.keys() == states[0].keys()
    for name, tensor in averaged.items():
        expected = (states[0][name].double() + states[1][name].double()) / 2
        torch.testing.assert_close(tensor.double(), expected.to(tensor.dtype).double(), rtol=0, atol=1e-6)
    assert json.loads((soup / "soup.json").read_text()) == {
        "average_of": [str(run) for run in two_runs],
        "weights": [0.5, 0.5],
    }


def test_a_weighted_soup_holds_the_weighted_mean(two_runs, tmp_path):
    soup = average_weights(two_runs, tmp_path / "soup", weights=[0.75, 0.25])
    states = [load_checkpoint(run).model.state_dict() for run in two_runs]
    for name, tensor in load_checkpoint(soup).model.state_dict().items():
        expected = 0.75 * states[0][name].double() + 0.25 * states[1][name].double()
        torch.testing.assert_close(tensor.double(), expected.to(tensor.dtype).double(), rtol=0, atol=1e-6)
    assert json.loads((soup / "soup.json").read_text())["weights"] == [0.75, 0.25]


def test_a_soup_of_one_model_with_itself_scores_as_the_model(two_runs, tmp_path):
    soup = average_weights([two_runs[0], two_runs[0]], tmp_path / "soup")
    exact = dict(dtype="float32")
    np.testing.assert_allclose(
        Reranker.from_pretrained(soup, **exact).predict(PAIRS),
        Reranker.from_pretrained(two_runs[0], **exact).predict(PAIRS),
        rtol=0,
        atol=1e-6,
    )


def test_models_of_different_shapes_or_too_few_are_refused(two_runs, tmp_path, modernbert_tokenizer_dir):
    other = create_random_reranker("17m", modernbert_tokenizer_dir, tmp_path / "17m", seed=0)
    with pytest.raises(ValueError, match="does not have the architecture"):
        average_weights([two_runs[0], other], tmp_path / "soup")
    with pytest.raises(ValueError, match="at least two models"):
        average_weights([two_runs[0]], tmp_path / "soup")
    for weights in ([0.5, 0.6], [1.5, -0.5], [1.0]):
        with pytest.raises(ValueError, match="one positive number per model summing to 1"):
            average_weights(two_runs, tmp_path / "soup", weights=weights)
