"""A model soup: the average of the weights of fine-tunings of one model (Wortsman et al. 2022).

Runs that start from the same weights stay in one basin, so their mean is a model too, and often
keeps what each run learnt. The default model's stage four averages two runs from stage three's
model (answer groups alone, and with stage two's data replayed): each missed part of issue 21's
bar, their average kept most of both (the model card).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..modeling.loading import load_checkpoint, save_modular

SOUP_FILE = "soup.json"  # beside the weights: the ingredients, by path


def average_weights(
    models: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None
) -> Path:
    """Write the (weighted) mean of `models`' weights (same architecture, Ettin modular layout) to `output`, with
    the first model's tokenizer and settings and `soup.json` naming the ingredients. `weights`: one
    positive weight per model, summing to 1 (None: uniform)."""
    if len(models) < 2:
        raise ValueError(f"a soup needs at least two models, got {len(models)}")
    weights = [1 / len(models)] * len(models) if weights is None else [float(w) for w in weights]
    if len(weights) != len(models) or min(weights) <= 0 or abs(sum(weights) - 1) > 1e-6:
        raise ValueError(f"weights must be one positive number per model summing to 1, got {weights}")
    checkpoints = [load_checkpoint(model) for model in models]
    states = [checkpoint.model.state_dict() for checkpoint in checkpoints]
    for model, state in zip(models[1:], states[1:], strict=True):
        shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
        if shapes != {name: tuple(tensor.shape) for name, tensor in states[0].items()}:
            raise ValueError(
                f"{model} does not have the architecture of {models[0]}: weights differ in name or shape"
            )
    mix = torch.tensor(weights, dtype=torch.float64)
    averaged = {
        # (models, *shape) -> shape: the weighted sum over the models
        name: torch.tensordot(mix, torch.stack([state[name].double() for state in states]), dims=1)
        for name in states[0]
    }
    soup = checkpoints[0]
    soup.model.load_state_dict(averaged)  # copied into each parameter's own dtype
    out = save_modular(soup.model, soup.tokenizer_dir, output, max_length=soup.max_length)
    (out / SOUP_FILE).write_text(
        json.dumps({"average_of": [str(model) for model in models], "weights": weights}, indent=1) + "\n"
    )
    return out
