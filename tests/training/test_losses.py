"""Losses: fp32 per-pair values that do not depend on batch neighbours from other queries."""

from __future__ import annotations

import pytest
import torch

from ettin_rerank.training.losses import margin_mse, per_pair_loss, pointwise_mse


def test_mse_matches_definition_and_is_fp32():
    student = torch.tensor([1.0, -2.0, 3.5])
    teacher = torch.tensor([0.5, -2.0, 1.5])
    assert pointwise_mse(student, teacher).item() == pytest.approx((0.25 + 0 + 4.0) / 3)
    assert pointwise_mse(student, teacher, reduction="none").tolist() == pytest.approx([0.25, 0.0, 4.0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss", ["mse", "margin-mse"])
def test_half_precision_inputs_give_finite_fp32_losses(dtype, loss):
    # Ettin-range logits: fp16 squares of differences near 40 overflow nothing once upcast.
    student = torch.tensor([22.0, -12.0, 15.0, -11.5], dtype=dtype)
    teacher = torch.tensor([-12.0, 22.0, -11.0, 21.0], dtype=dtype)
    group = torch.tensor([0, 0, 1, 1])
    out = per_pair_loss(loss, student, teacher, group)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    reference = per_pair_loss(loss, student.float(), teacher.float(), group)
    torch.testing.assert_close(out, reference)


def test_mse_per_pair_loss_ignores_batch_neighbours():
    torch.manual_seed(0)
    student, teacher = torch.randn(5), torch.randn(5)
    alone = pointwise_mse(student[:2], teacher[:2], reduction="none")
    mixed = pointwise_mse(
        torch.cat([torch.randn(3), student[:2]]), torch.cat([torch.randn(3), teacher[:2]]), reduction="none"
    )[3:]
    torch.testing.assert_close(alone, mixed, rtol=0, atol=0)


def test_margin_mse_query_loss_ignores_other_queries():
    torch.manual_seed(0)
    s_a, t_a = torch.randn(4), torch.randn(4)
    alone = margin_mse(s_a, t_a, torch.zeros(4, dtype=torch.long), reduction="none")
    s = torch.cat([torch.randn(3), s_a, torch.randn(2)])
    t = torch.cat([torch.randn(3), t_a, torch.randn(2)])
    group = torch.tensor([5, 5, 6, 9, 9, 9, 9, 7, 7])
    mixed = margin_mse(s, t, group, reduction="none")[3:7]
    torch.testing.assert_close(alone, mixed)
    assert alone.sum() > 0


def test_margin_mse_is_shift_invariant_per_query_and_mse_is_not():
    teacher = torch.tensor([3.0, 1.0, -2.0, 0.5, 4.0])
    group = torch.tensor([0, 0, 0, 1, 1])
    shifted = teacher + torch.tensor([7.0, 7.0, 7.0, -3.0, -3.0])  # a constant per query
    assert margin_mse(shifted, teacher, group).item() == pytest.approx(0.0, abs=1e-6)
    assert pointwise_mse(shifted, teacher).item() > 1.0


def test_margin_mse_gradient_flows_and_singletons_are_zero():
    student = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    teacher = torch.tensor([0.0, 0.0, 0.0])
    loss = margin_mse(student, teacher, torch.tensor([0, 0, 1]), reduction="none")
    assert loss[2].item() == 0.0  # alone in its query: no margin
    loss.sum().backward()
    assert student.grad[0] < 0 < student.grad[1]


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown loss"):
        per_pair_loss("listnet", torch.zeros(2), torch.zeros(2), torch.zeros(2, dtype=torch.long))
