"""SAC networks: the tanh-Gaussian actor's box, its deterministic action (evaluation), the
critics' shapes; the episode window's J_c_hat as a property."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from gradmanip.rl.collect import GaussianPolicy
from gradmanip.rl.episode_window import EpisodeWindow
from gradmanip.rl.sac_models import ActionHead, deterministic_action, make_sac_networks

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
