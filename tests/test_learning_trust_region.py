"""Learning with the trust-region rules on the toy task: CPO and PCPO end within the limit.

SafetyPointVelocity-v0 (cost limit 10 per 100-step episode; reward-only TRPO pays a cost of
about 97): on the natural-gradient base, CPO and PCPO aim at 0.8 x the limit and end, averaged
over the last three epochs, within the limit with a return far above a random policy's (about
0). Fixed seeds; about 20 s of CPU in total.
"""

import functools

import numpy as np
import pytest
import torch

import safe_envs
from gradmanip.algos import NaturalGradient
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocity-v0"
LIMIT = safe_envs.default_cost_limit(TASK)
TARGET = 0.8 * LIMIT
SEED = 0


def train(name: str, epochs: int = 16) -> list[dict[str, float]]:
    torch.manual_seed(SEED)
    actor_critic = make_actor_critic(1, 1, seed=SEED)
    collector = make_collector(
        functools.partial(safe_envs.make_env, TASK, seed=SEED),
        GaussianPolicy(actor_critic.policy_net),
        frames_per_batch=500,
        seed=SEED,
    )
    algo = NaturalGradient(
        actor_critic,
        make_strategy(name, cost_limit=TARGET),
        max_kl=0.02,
        critic_epochs=5,
        critic_batch_size=50,
        seed=SEED,
    )
    advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
    trainer = Trainer(collector, algo, actor_critic, advantages)
    try:
        return trainer.train(epochs)
    finally:
        collector.shutdown()


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def final(history: list[dict[str, float]], key: str) -> float:
    return float(np.mean([metrics[key] for metrics in history[-3:]]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cpo", "pcpo"])
def test_trust_region_rules_end_within_the_limit_with_high_reward(name: str) -> None:
    history = train(name)
    assert final(history, "episode_cost") <= LIMIT
    assert final(history, "episode_return") > 20.0  # a random policy earns about 0
    assert max(metrics["episode_cost"] for metrics in history) > TARGET  # the limit was active
    assert all(metrics["kl"] <= 0.02 for metrics in history)
