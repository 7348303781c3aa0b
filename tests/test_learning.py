"""Learning on the toy task: chasing reward breaks the constraint, constrained strategies keep it.

SafetyPointVelocity-v0 (cost limit 10 per 100-step episode): reward-only PPO drives the speed to
the top and pays a cost on almost every step; soft switching (PCRPO), the Lagrangian and hard
switching (CRPO) end within the limit while keeping reward far above a random policy's (about 0).
The constrained strategies aim at 0.8 x the limit, the usual safety margin for a noisy one-batch
estimate J_c_hat. Fixed seeds; about half a minute of CPU in total.
"""

import functools

import numpy as np
import pytest
import torch

import safe_envs
from gradmanip.algos import PPO
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocity-v0"
LIMIT = safe_envs.default_cost_limit(TASK)
TARGET = 0.8 * LIMIT
SEED = 0
STRATEGIES = {
    "reward_only": {},
    "soft_switch": {"cost_limit": TARGET, "upper_slack": 0.0, "lower_slack": -3.0},
    "lagrangian": {"cost_limit": TARGET, "optimizer": "sgd", "lr": 0.05, "multiplier_init": 0.0},
    "hard_switch": {"cost_limit": TARGET},
}


def train(name: str, epochs: int = 12) -> list[dict[str, float]]:
    torch.manual_seed(SEED)
    actor_critic = make_actor_critic(1, 1, seed=SEED)
    collector = make_collector(
        functools.partial(safe_envs.make_env, TASK, seed=SEED),
        GaussianPolicy(actor_critic.policy_net),
        frames_per_batch=500,
        seed=SEED,
    )
    algo = PPO(
        actor_critic,
        make_strategy(name, **STRATEGIES[name]),
        lr=1e-2,
        epochs=10,
        minibatch_size=50,
        target_kl=None,
        generator=torch.Generator().manual_seed(SEED),
    )
    advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
    trainer = Trainer(collector, algo, actor_critic, advantages)
    try:
        return trainer.train(epochs)
    finally:
        collector.shutdown()


def random_policy_return(episodes: int = 5) -> float:
    env = safe_envs.make_env(TASK, seed=SEED)
    returns = []
    for _ in range(episodes):
        rollout = env.rollout(100)  # uniform random actions
        returns.append(rollout["next", "reward"].sum().item())
    env.close()
    return float(np.mean(returns))


def final(history: list[dict[str, float]], key: str) -> float:
    return float(np.mean([metrics[key] for metrics in history[-3:]]))


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
