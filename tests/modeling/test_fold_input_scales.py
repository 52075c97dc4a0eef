"""`Encoder.fold_input_scales`: dividing a linear's input inside the weights that produce it is an
identity in exact arithmetic (int8 mode folds its smoothing this way, `inference/int8.py`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ettin_rerank.modeling.attention import Packing
from ettin_rerank.modeling.encoder import PackedInputs
from ettin_rerank.modeling.modernbert import FULL_ATTENTION, ModernBertModel
from tiny_encoders import ENCODERS, modernbert


def packed_inputs() -> PackedInputs:
    torch.manual_seed(1)
    packing = Packing.from_lengths([300, 1, 140, 64, 2, 129, 70])
    token_type_ids = (packing.position_ids > 5).long()  # read by BERT only
    return PackedInputs(torch.randint(1, 100, (packing.total_tokens,)), token_type_ids, packing)


def random_divisors(encoder: nn.Module) -> dict[nn.Linear, torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    return {
        m: torch.rand(m.in_features, generator=generator) * 8 + 0.1  # factors of 0.1 to 8.1
        for m in encoder.modules()
        if type(m) is nn.Linear
    }


def foldable(encoder: nn.Module) -> set[nn.Linear]:
    """The linears whose input each family folds: ModernBERT all but the first layer's Wqkv (it reads
    the residual stream itself); BERT (post-norm, GELU) only the attention output projections."""
    if isinstance(encoder, ModernBertModel):
        return {m for m in encoder.modules() if type(m) is nn.Linear} - {encoder.layers[0].attn.Wqkv}
    return {layer.attention.output.dense for layer in encoder.encoder.layer}


@pytest.mark.parametrize("name", list(ENCODERS))
@torch.inference_mode()
def test_folded_divisors_undone_at_each_input_give_the_same_output(name):
    encoder = ENCODERS[name]()
    inputs = packed_inputs()
    expected = encoder(inputs)
    divisors = random_divisors(encoder)
    folded = encoder.fold_input_scales(divisors)
    assert folded == foldable(encoder)
    for linear in folded:  # multiply each folded input back: the model must be what it was
        linear.register_forward_pre_hook(lambda m, args, d=divisors[linear]: (args[0] * d,))
    torch.testing.assert_close(encoder(inputs), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(ENCODERS))
@torch.inference_mode()
def test_a_folded_input_arrives_divided(name):
    encoder = ENCODERS[name]()
    inputs = packed_inputs()
    divisors = random_divisors(encoder)
    seen: dict[nn.Linear, list[torch.Tensor]] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.setdefault(module, []).append(args[0].clone())

    hooks = [linear.register_forward_pre_hook(record) for linear in divisors]
    encoder(inputs)
    folded = encoder.fold_input_scales(divisors)
    for linear in folded:  # after `record`: what it sees is the folded input, the rest of the model as before
        linear.register_forward_pre_hook(lambda m, args, d=divisors[linear]: (args[0] * d,))
    encoder(inputs)
    for hook in hooks:
        hook.remove()
    for linear in folded:
        before, after = seen[linear]
        torch.testing.assert_close(after * divisors[linear], before, atol=1e-5, rtol=1e-5)


def test_folding_replaces_parameters_instead_of_writing_them():
    # a parameter may be memory-mapped from a checkpoint or shared with another model
    encoder = modernbert(FULL_ATTENTION)
    norm_weight = encoder.layers[1].mlp_norm.weight
    kept = norm_weight.clone()
    encoder.fold_input_scales(random_divisors(encoder))
    assert torch.equal(norm_weight, kept)
    assert encoder.layers[1].mlp_norm.weight is not norm_weight


def test_a_producer_already_swapped_out_is_left_alone():
    encoder = modernbert(FULL_ATTENTION)
    layer = encoder.layers[1]
    layer.mlp.Wi = nn.Sequential(layer.mlp.Wi)  # no longer an nn.Linear whose rows can be divided
    divisors = {layer.mlp.Wo: torch.full((layer.mlp.Wo.in_features,), 2.0)}
    assert encoder.fold_input_scales(divisors) == set()
