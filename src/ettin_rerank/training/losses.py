"""Distillation losses on raw logits, computed in fp32 whatever the inputs' dtype.

Both return one loss per pair (`reduction="none"`), so the trainer can sum them and
divide by the global batch size; that makes a pair's contribution independent of
how the batch is split over micro-batches and processes.

- `mse`: (student - teacher)^2, the Ettin recipe.
- `margin-mse`: for pair i of query q, the mean over the other pairs j of q in the same
  batch of ((s_i - s_j) - (t_i - t_j))^2. Depends only on pairs of the same query.
"""

from __future__ import annotations

import torch

from ..config.distill import LOSSES


def pointwise_mse(student: torch.Tensor, teacher: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """student, teacher: (pairs,) -> scalar, or (pairs,) with reduction='none'; always fp32."""
    per_pair = (student.float() - teacher.float()).square()
    return _reduce(per_pair, reduction)


def margin_mse(
    student: torch.Tensor, teacher: torch.Tensor, group: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Margin MSE within query groups. group: (pairs,) int ids; pairs alone in their group get 0."""
    s, t = student.float(), teacher.float()
    same = group[:, None] == group[None, :]  # (pairs, pairs)
    same.fill_diagonal_(False)
    diff = (s[:, None] - s[None, :]) - (t[:, None] - t[None, :])  # (pairs, pairs)
    sq = diff.square() * same
    others = same.sum(dim=1).clamp(min=1)
    per_pair = sq.sum(dim=1) / others  # (pairs,)
    return _reduce(per_pair, reduction)


def _reduce(per_pair: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_pair
    if reduction == "sum":
        return per_pair.sum()
    if reduction == "mean":
        return per_pair.mean()
    raise ValueError(f"unknown reduction {reduction!r}; choose none, sum or mean")


def per_pair_loss(
    name: str, student: torch.Tensor, teacher: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    if name == "mse":
        return pointwise_mse(student, teacher, reduction="none")
    if name == "margin-mse":
        return margin_mse(student, teacher, group, reduction="none")
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
