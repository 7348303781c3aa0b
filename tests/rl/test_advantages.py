"""Reward and cost GAE against hand-computed values (truncation bootstraps, termination not)."""

import pytest
import torch
from tensordict import TensorDict
from torch import nn
from torchrl.modules import ValueOperator

from gradmanip.rl.advantages import SafeAdvantages, normalize_


class FirstFeature(nn.Module):
    """V(s) = scale * s[0]: values we can compute by hand."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale * obs[..., :1]


def critics(cost_scale: float = 1.0):
    reward = ValueOperator(FirstFeature(), in_keys=["observation"], out_keys=["state_value"])
    cost = ValueOperator(FirstFeature(cost_scale), in_keys=["observation"], out_keys=["cost_value"])
    return reward, cost


def trajectory(rewards, costs, terminated, truncated, values, next_values):
    """A [T] batch; V(s_t) = values[t], V(s_{t+1}) = next_values[t]."""
    col = lambda xs, dtype=torch.float32: torch.tensor(xs, dtype=dtype)[:, None]  # noqa: E731
    term, trunc = col(terminated, torch.bool), col(truncated, torch.bool)
    return TensorDict(
        {
            "observation": col(values),
            "next": {
                "observation": col(next_values),
                "reward": col(rewards),
                "cost": col(costs),
                "terminated": term,
                "truncated": trunc,
                "done": term | trunc,
            },
        },
        batch_size=[len(rewards)],
    )


def hand_gae(rewards, terminated, done, values, next_values, gamma, lmbda):
    """Reference GAE written from the definition, step by step backwards."""
    advantages = [0.0] * len(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        bootstrap = 0.0 if terminated[t] else gamma * next_values[t]
        delta = rewards[t] + bootstrap - values[t]
        running = delta + (0.0 if done[t] else gamma * lmbda * running)
        advantages[t] = running
    return advantages


REWARDS = [1.0, 0.5, -1.0, 2.0, 0.0, 1.5]
COSTS = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
TERMINATED = [False, True, False, False, False, False]
TRUNCATED = [False, False, False, True, False, False]
VALUES = [0.3, -0.2, 0.7, 1.1, 0.4, -0.5]
NEXT_VALUES = [0.9, 0.6, 0.1, 2.0, -0.3, 0.8]


def test_reward_and_cost_gae_match_hand_computation_with_truncation_and_termination():
    batch = trajectory(REWARDS, COSTS, TERMINATED, TRUNCATED, VALUES, NEXT_VALUES)
    reward_critic, cost_critic = critics(cost_scale=2.0)
    advantages = SafeAdvantages(
        reward_critic,
        cost_critic,
        gamma=0.9,
        lmbda=0.8,
        cost_gamma=0.7,
        cost_lmbda=0.5,
        reward_normalization="none",
        cost_normalization="none",
    )
    advantages(batch)
    done = [a or b for a, b in zip(TERMINATED, TRUNCATED, strict=True)]
    expected = hand_gae(REWARDS, TERMINATED, done, VALUES, NEXT_VALUES, 0.9, 0.8)
    cost_values = [2 * v for v in VALUES]
    cost_next = [2 * v for v in NEXT_VALUES]
    expected_cost = hand_gae(COSTS, TERMINATED, done, cost_values, cost_next, 0.7, 0.5)
    torch.testing.assert_close(batch["advantage"].squeeze(-1), torch.tensor(expected))
    torch.testing.assert_close(batch["cost_advantage"].squeeze(-1), torch.tensor(expected_cost))
    torch.testing.assert_close(
        batch["value_target"].squeeze(-1), torch.tensor(expected) + torch.tensor(VALUES)
    )
    torch.testing.assert_close(
        batch["cost_value_target"].squeeze(-1),
        torch.tensor(expected_cost) + torch.tensor(cost_values),
    )
    # The explicit checks the hand reference encodes:
    # t=1 terminated: no bootstrap and no trace from t=2.
    assert batch["advantage"][1].item() == pytest.approx(0.5 - (-0.2))
    # t=3 truncated: bootstraps from V(s_4') but does not carry the trace of t=4.
    assert batch["advantage"][3].item() == pytest.approx(2.0 + 0.9 * 2.0 - 1.1)
    # t=5 is the end of the batch: bootstraps like a truncation.
    assert batch["advantage"][5].item() == pytest.approx(1.5 + 0.9 * 0.8 + 0.5)


def test_environments_in_a_batch_are_independent():
    first = trajectory(REWARDS, COSTS, TERMINATED, TRUNCATED, VALUES, NEXT_VALUES)
    second = trajectory(
        REWARDS[::-1], COSTS[::-1], [False] * 6, [False] * 6, VALUES[::-1], NEXT_VALUES[::-1]
    )
    both = torch.stack([first, second])  # [envs=2, time=6]
    advantages = SafeAdvantages(*critics(), reward_normalization="none", cost_normalization="none")
    advantages(both)
    for row, single in enumerate((first, second)):
        advantages(single)
        torch.testing.assert_close(both["advantage"][row], single["advantage"])
        torch.testing.assert_close(both["cost_advantage"][row], single["cost_advantage"])


def test_normalization_modes():
    x = torch.tensor([1.0, 2.0, 3.0, 10.0])
    standardized = normalize_(x.clone(), "standardize")
    assert standardized.mean().abs() < 1e-6 and standardized.std() == pytest.approx(1.0, abs=1e-5)
    centered = normalize_(x.clone(), "center")
    assert centered.mean().abs() < 1e-6
    torch.testing.assert_close(centered.std(), x.std())
    torch.testing.assert_close(normalize_(x.clone(), "none"), x)


def test_standardised_advantages_leave_value_targets_unnormalised():
    batch = trajectory(REWARDS, COSTS, TERMINATED, TRUNCATED, VALUES, NEXT_VALUES)
    raw = batch.clone()
    SafeAdvantages(*critics(), reward_normalization="none", cost_normalization="none")(raw)
    SafeAdvantages(*critics(), reward_normalization="standardize", cost_normalization="center")(
        batch
    )
    torch.testing.assert_close(batch["value_target"], raw["value_target"])
    assert batch["advantage"].mean().abs() < 1e-6
    torch.testing.assert_close(
        batch["cost_advantage"], raw["cost_advantage"] - raw["cost_advantage"].mean()
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"gamma": 1.5}, "gamma"),
        ({"lmbda": -0.1}, "lmbda"),
        ({"cost_gamma": 2.0}, "cost_gamma"),
        ({"reward_normalization": "zscore"}, "reward_normalization"),
        ({"cost_normalization": "scale"}, "cost_normalization"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SafeAdvantages(*critics(), **kwargs)


def test_bad_inputs_name_the_problem():
    with pytest.raises(TypeError, match="reward_critic"):
        SafeAdvantages(FirstFeature(), critics()[1])
    batch = trajectory(REWARDS, COSTS, TERMINATED, TRUNCATED, VALUES, NEXT_VALUES)
    del batch["next", "cost"]
    with pytest.raises(KeyError, match="cost"):
        SafeAdvantages(*critics())(batch)
    with pytest.raises(ValueError, match="time dimension"):
        SafeAdvantages(*critics())(batch[0])


def test_repr_shows_settings():
    text = repr(SafeAdvantages(*critics(), gamma=0.99, cost_lmbda=0.9))
    assert "gamma=0.99" in text and "cost_lmbda=0.9" in text


def test_several_constraints_each_cost_column_on_its_own():
    # K = 2 cost columns of very different scales: GAE per column as for one constraint, and
    # each column standardised on its own (a joint standardisation would shrink the small one)
    steps = 6
    torch.manual_seed(0)
    obs, next_obs = torch.randn(steps, 2), torch.randn(steps, 2)
    costs = torch.stack([torch.rand(steps), 100.0 * torch.rand(steps)], dim=1)
    terminated = torch.zeros(steps, 1, dtype=torch.bool)
    terminated[2] = True
    truncated = torch.zeros(steps, 1, dtype=torch.bool)
    truncated[4] = True

    class BothFeatures(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[..., :2] * torch.tensor([1.0, 50.0])

    reward_critic = ValueOperator(FirstFeature(), in_keys=["observation"], out_keys=["state_value"])
    cost_critic = ValueOperator(BothFeatures(), in_keys=["observation"], out_keys=["cost_value"])
    batch = TensorDict(
        {
            "observation": obs,
            "next": {
                "observation": next_obs,
                "reward": torch.ones(steps, 1),
                "cost": costs,
                "terminated": terminated,
                "truncated": truncated,
                "done": terminated | truncated,
            },
        },
        batch_size=[steps],
    )
    SafeAdvantages(reward_critic, cost_critic, gamma=0.9, lmbda=0.8)(batch)
    advantage = batch["cost_advantage"]
    assert advantage.shape == batch["cost_value_target"].shape == (steps, 2)
    done = (terminated | truncated)[:, 0].tolist()
    for k, scale in enumerate((1.0, 50.0)):
        raw = torch.tensor(
            hand_gae(
                costs[:, k].tolist(),
                terminated[:, 0].tolist(),
                done,
                (scale * obs[:, k]).tolist(),
                (scale * next_obs[:, k]).tolist(),
                0.9,
                0.8,
            )
        )
        torch.testing.assert_close(
            batch["cost_value_target"][:, k], raw + scale * obs[:, k], rtol=1e-5, atol=1e-4
        )
        expected = (raw - raw.mean()) / (raw.std() + 1e-8)
        torch.testing.assert_close(advantage[:, k], expected, rtol=1e-4, atol=1e-5)


def test_cost_critic_must_give_one_value_per_constraint():
    reward_critic, cost_critic = critics()
    batch = trajectory([1.0] * 3, [0.0] * 3, [False] * 3, [False] * 3, [1.0] * 3, [1.0] * 3)
    batch["next", "cost"] = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"num_costs=K"):
        SafeAdvantages(reward_critic, cost_critic)(batch)
