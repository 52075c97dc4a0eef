"""Activation functions named the way checkpoints name them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# transformers' ACT2FN names (config.json `hidden_activation`, `hidden_act`, ...).
_BY_CONFIG_NAME: dict[str, Callable[[], nn.Module]] = {
    "gelu": lambda: nn.GELU(),
    "gelu_python": lambda: nn.GELU(),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_fast": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
    "silu": lambda: nn.SiLU(),
    "swish": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "identity": lambda: nn.Identity(),
    "linear": lambda: nn.Identity(),
}

# Sentence Transformers module configs store the activation's import path.
_BY_IMPORT_PATH: dict[str, Callable[[], nn.Module]] = {
    "torch.nn.modules.activation.GELU": lambda: nn.GELU(),
    "torch.nn.modules.activation.Tanh": lambda: nn.Tanh(),
    "torch.nn.modules.activation.ReLU": lambda: nn.ReLU(),
    "torch.nn.modules.activation.SiLU": lambda: nn.SiLU(),
    "torch.nn.modules.activation.Sigmoid": lambda: nn.Sigmoid(),
    "torch.nn.modules.linear.Identity": lambda: nn.Identity(),
}


def activation_from_config_name(name: str) -> nn.Module:
    try:
        return _BY_CONFIG_NAME[name.lower()]()
    except KeyError:
        raise ValueError(
            f"unsupported activation {name!r} in config.json; supported: {sorted(_BY_CONFIG_NAME)}"
        ) from None


def activation_from_import_path(path: str | None) -> nn.Module:
    if path is None:
        return nn.Identity()
    try:
        return _BY_IMPORT_PATH[path]()
    except KeyError:
        raise ValueError(
            f"unsupported activation_function {path!r} in a Dense module config; supported: {sorted(_BY_IMPORT_PATH)}"
        ) from None


def activation_import_path(module: nn.Module) -> str:
    """The inverse of `activation_from_import_path`, for writing Sentence Transformers configs."""
    return f"{type(module).__module__}.{type(module).__name__}"


def sigmoid_fp32(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid computed in fp32: half-precision sigmoids tie strong matches."""
    return torch.sigmoid(logits.float())
