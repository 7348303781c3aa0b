"""The on-policy learning runs shared by the learning tests on the toy tasks.

One seed for everything: the networks, the collector, the minibatch order. Each test chooses the
task, the algorithm (built on the run's actor-critic) and the number of epochs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

import safe_envs
from gradmanip.algos import PPO
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import ActorCritic, make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import Strategy

SEED = 0


def train_on_toy_task(
    task: str, make_algo: Callable[[ActorCritic], object], epochs: int
) -> list[dict[str, float]]:
    """Train ``make_algo(actor_critic)`` for ``epochs`` epochs of 500 steps on ``task``."""
    torch.manual_seed(SEED)
    actor_critic = make_actor_critic(1, 1, seed=SEED, num_costs=safe_envs.num_costs(task))
    collector = make_collector(
        functools.partial(safe_envs.make_env, task, seed=SEED),
        GaussianPolicy(actor_critic.policy_net),
        frames_per_batch=500,
        seed=SEED,
    )
    algo = make_algo(actor_critic)
    advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
    trainer = Trainer(collector, algo, actor_critic, advantages)
    try:
        return trainer.train(epochs)
    finally:
        collector.shutdown()


def toy_ppo(strategy: Strategy) -> Callable[[ActorCritic], PPO]:
    """PPO with ``strategy`` and the settings that learn the toy tasks in a few epochs."""

    def build(actor_critic: ActorCritic) -> PPO:
        return PPO(
            actor_critic,
            strategy,
            lr=1e-2,
            epochs=10,
            minibatch_size=50,
            target_kl=None,
            generator=torch.Generator().manual_seed(SEED),
        )

    return build


def final(history: list[dict[str, float]], key: str, last: int = 3) -> float:
    """``key`` averaged over the ``last`` epochs."""
    return float(np.mean([metrics[key] for metrics in history[-last:]]))
