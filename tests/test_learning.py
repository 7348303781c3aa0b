"""Learning on the toy task: chasing reward breaks the constraint, constrained strategies keep it.

SafetyPointVelocity-v0 (cost limit 10 per 100-step episode): reward-only PPO drives the speed to
the top and pays a cost on almost every step; soft switching (PCRPO), the Lagrangian and hard
switching (CRPO) end within the limit while keeping reward far above a random policy's (about 0).
The constrained strategies aim at 0.8 x the limit, the usual safety margin for a noisy one-batch
estimate J_c_hat. Fixed seeds; about half a minute of CPU in total.
"""

import numpy as np
import pytest
import torch
from toy_learning import SEED, final, toy_ppo, train_on_toy_task

import safe_envs
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocity-v0"
LIMIT = safe_envs.default_cost_limit(TASK)
TARGET = 0.8 * LIMIT
STRATEGIES = {
    "reward_only": {},
    "soft_switch": {"cost_limit": TARGET, "upper_slack": 0.0, "lower_slack": -3.0},
    "lagrangian": {"cost_limit": TARGET, "optimizer": "sgd", "lr": 0.05, "multiplier_init": 0.0},
    "hard_switch": {"cost_limit": TARGET},
}


def train(name: str, epochs: int = 12) -> list[dict[str, float]]:
    return train_on_toy_task(TASK, toy_ppo(make_strategy(name, **STRATEGIES[name])), epochs)


def random_policy_return(episodes: int = 5) -> float:
    env = safe_envs.make_env(TASK, seed=SEED)
    returns = []
    for _ in range(episodes):
        rollout = env.rollout(100)  # uniform random actions
        returns.append(rollout["next", "reward"].sum().item())
    env.close()
    return float(np.mean(returns))


@pytest.fixture(scope="module")
def random_return() -> float:
    torch.manual_seed(SEED)
    return random_policy_return()


def test_reward_only_ppo_breaks_the_constraint():
    history = train("reward_only")
    assert final(history, "episode_cost") > 3 * LIMIT
    assert history[-1]["strategy/mode"] == 1.0


@pytest.mark.parametrize("name", ["soft_switch", "lagrangian", "hard_switch"])
def test_constrained_ppo_ends_within_the_limit_with_high_reward(name, random_return):
    history = train(name)
    assert final(history, "episode_cost") <= LIMIT
    assert abs(random_return) < 10.0
    assert final(history, "episode_return") > random_return + 20.0
    assert max(metrics["episode_cost"] for metrics in history) > TARGET  # the limit was active
