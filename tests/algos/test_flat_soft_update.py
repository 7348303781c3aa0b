"""The fused Polyak step equals TorchRL's SoftUpdate element for element, reads the loss's own
target tensors (also after a state dict is loaded) and leaves the sources alone."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchrl.objectives import SoftUpdate

from gradmanip.algos.flat_soft_update import FlatSoftUpdate
from gradmanip.objectives import SafeSACLoss
from gradmanip.rl.sac_models import make_sac_networks


def make_loss(seed: int = 0, constraints: int = 2) -> SafeSACLoss:
    nets = make_sac_networks(4, 2, (8, 8), seed=seed)
    return SafeSACLoss(
        nets.actor,
        nets.qvalue,
        nets.cost_qvalue,
        num_constraints=constraints,
        num_cost_qvalue_nets=2,
    )


def leaves(params) -> list[torch.Tensor]:
    return [t.detach().clone() for t in params.values(True, True)]


def all_targets(loss: SafeSACLoss) -> list[torch.Tensor]:
    return leaves(loss.target_qvalue_network_params) + leaves(
        loss.target_cost_qvalue_network_params
    )


def perturb(loss: SafeSACLoss, seed: int) -> None:
    """Sources and targets apart, with magnitudes from 1e-6 to 1e3."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for params in (loss.qvalue_network_params, loss.cost_qvalue_network_params):
            for t in params.values(True, True):
                scale = 10.0 ** torch.randint(-6, 4, (), generator=g).item()
                t.add_(torch.randn(t.shape, generator=g) * scale)


def fused_and_torchrl_steps(tau: float, seeds: list[int], loss_seed: int = 0, constraints: int = 2):
    """Both updaters on copies of one loss, each step after the same perturbation; returns the
    fused copy once every step's targets were equal element for element."""
    fused_loss = make_loss(loss_seed, constraints)
    plain_loss = copy.deepcopy(fused_loss)
    fused, plain = FlatSoftUpdate(fused_loss, tau=tau), SoftUpdate(plain_loss, tau=tau)
    for seed in seeds:
        perturb(fused_loss, seed)
        perturb(plain_loss, seed)
        fused.step()
        plain.step()
        for got, want in zip(all_targets(fused_loss), all_targets(plain_loss), strict=True):
            assert torch.equal(got, want)
    return fused_loss


@pytest.mark.parametrize("tau", [0.005, 0.05, 0.4])
def test_equals_torchrl_soft_update_bit_for_bit(tau):
    loss = fused_and_torchrl_steps(tau, list(range(5)))
    assert not torch.equal(all_targets(loss)[0], leaves(loss.qvalue_network_params)[0])


@settings(max_examples=30, deadline=None)
@given(tau=st.floats(1e-6, 0.5), seed=st.integers(0, 2**16), constraints=st.integers(1, 3))
def test_equals_torchrl_soft_update_for_any_tau(tau, seed, constraints):
    fused_and_torchrl_steps(tau, [seed], seed % 7, constraints)


def test_moves_targets_towards_sources_and_leaves_sources_alone():
    loss = make_loss(constraints=1)
    updater = FlatSoftUpdate(loss, tau=0.25)
    perturb(loss, 0)
    sources = leaves(loss.qvalue_network_params) + leaves(loss.cost_qvalue_network_params)
    before = all_targets(loss)
    updater.step()
    for target, old, source in zip(all_targets(loss), before, sources, strict=True):
        torch.testing.assert_close(target, 0.75 * old + 0.25 * source)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            sources,
            leaves(loss.qvalue_network_params) + leaves(loss.cost_qvalue_network_params),
            strict=True,
        )
    )
    assert all(p.grad is None for p in loss.qvalue_network_params.values(True, True))


def test_steps_the_loaded_targets_after_load_state_dict():
    loss, reference, other = make_loss(0), make_loss(0), make_loss(1)
    updater, reference_updater = FlatSoftUpdate(loss, tau=0.5), SoftUpdate(reference, tau=0.5)
    updater.step()  # gathers the tensors
    reference_updater.step()
    perturb(other, 3)
    loss.load_state_dict(other.state_dict())
    reference.load_state_dict(other.state_dict())
    updater.step()
    reference_updater.step()
    for got, want in zip(all_targets(loss), all_targets(reference), strict=True):
        assert torch.equal(got, want)
