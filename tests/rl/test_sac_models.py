"""SAC networks: the tanh-Gaussian actor's box, its deterministic action (evaluation), the
critics' shapes and their stacked evaluation; the episode window's J_c_hat as a property."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type

from gradmanip.rl.collect import GaussianPolicy
from gradmanip.rl.episode_window import EpisodeWindow
from gradmanip.rl.sac_models import (
    ActionHead,
    StateAction,
    deterministic_action,
    make_sac_networks,
)

LOW, HIGH = [-2.0, 0.0], [1.0, 4.0]


def test_actions_stay_in_the_box_and_the_deterministic_one_is_the_squashed_mean():
    nets = make_sac_networks(3, 2, (16,), LOW, HIGH, seed=0)
    obs = 3.0 * torch.randn(64, 3)
    low, high = torch.tensor(LOW), torch.tensor(HIGH)
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        sampled = nets.actor(TensorDict({"observation": obs}, [64]))["action"]
    assert bool(((sampled >= low) & (sampled <= high)).all())
    loc = nets.actor.module[0](TensorDict({"observation": obs}, [64]))["loc"].detach()
    expected = low + (high - low) * (torch.tanh(loc) + 1) / 2
    torch.testing.assert_close(deterministic_action(nets.actor, obs), expected)
    # the evaluation policy (GaussianPolicy over ActionHead) acts with that action
    policy = GaussianPolicy(ActionHead(nets.actor))
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        action = policy(TensorDict({"observation": obs}, [64]))["action"]
    torch.testing.assert_close(action, expected)


def test_critics_read_observation_and_action():
    nets = make_sac_networks(3, 2, (16,), seed=0)
    td = TensorDict({"observation": torch.randn(5, 3), "action": torch.rand(5, 2)}, [5])
    assert nets.qvalue(td.clone())["state_action_value"].shape == (5, 1)
    assert nets.cost_qvalue(td.clone())["cost_action_value"].shape == (5, 1)


def _stacked_params(nets: list[StateAction]) -> dict[str, torch.Tensor]:
    named = [dict(net.named_parameters()) for net in nets]
    return {name: torch.stack([n[name] for n in named]) for name in named[0]}


@pytest.mark.parametrize("members", [1, 2, 3])
@pytest.mark.parametrize("batch", [(7,), (2, 5)])
def test_stacked_critics_match_each_member_in_values_and_gradients(members, batch):
    torch.manual_seed(members)
    nets = [make_sac_networks(4, 2, (8, 6), seed=i).qvalue.module for i in range(members)]
    params = _stacked_params(nets)
    obs = torch.randn(*batch, 4, requires_grad=True)
    act = torch.rand(*batch, 2, requires_grad=True)
    stacked = nets[0].forward_stacked(params, obs, act)
    assert stacked.shape == (members, *batch, 1)
    looped = torch.stack([net(obs, act) for net in nets])
    torch.testing.assert_close(stacked, looped)
    weights = torch.randn_like(looped)
    grads = torch.autograd.grad((stacked * weights).sum(), [obs, act, *params.values()])
    expected = torch.autograd.grad(
        (looped * weights).sum(), [obs, act, *(p for net in nets for p in net.parameters())]
    )
    torch.testing.assert_close(grads[:2], expected[:2])
    per_member = expected[2:]
    count = len(params)
    for k, grad in enumerate(grads[2:]):
        torch.testing.assert_close(grad, torch.stack(per_member[k::count]))


def test_a_critic_with_a_layer_that_is_not_elementwise_is_not_stacked():
    net = StateAction(nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 1)))
    assert not net.stackable
    params = _stacked_params([net, net])
    assert net.forward_stacked(params, torch.randn(3, 4), torch.randn(3, 2)) is None
    assert make_sac_networks(4, 2, seed=0).cost_qvalue.module.stackable


def test_seeded_networks_are_reproducible_without_touching_the_global_rng():
    state = torch.get_rng_state()
    a, b = make_sac_networks(3, 2, seed=4), make_sac_networks(3, 2, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action_low": 1.0, "action_high": 1.0}, "action_low < action_high"),
        ({"action_high": float("inf")}, "finite"),
        ({"hidden": []}, "hidden"),
    ],
)
def test_bad_sizes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sac_networks(3, 2, **kwargs)


@settings(max_examples=50, deadline=None)
@given(
    window=st.integers(1, 6),
    costs=st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=0, max_size=15),
)
def test_episode_window_is_the_mean_of_the_last_episodes(window, costs):
    tracker = EpisodeWindow(window=window, initial_episode_cost=7.0)
    for cost in costs:
        tracker.add(1.0, [cost], 10)
    recent = costs[-window:]
    expected = sum(recent) / len(recent) if recent else 7.0
    assert tracker.episode_cost.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
