"""The training loop shared by every base algorithm.

One epoch (policy iteration)::

    batch = next(collector)                       # [*envs, time]
    stats = episodes.update(batch)                # returns, costs, lengths; J_c_hat
    advantages(batch)                             # reward and cost GAE
    strategy.update_state(J_c_hat)                # multipliers, PID, slack annealing
    metrics = algo.update(batch.reshape(-1), J_c_hat)
    collector.update_policy_weights_()            # workers see the new policy

Logging, progress bars and checkpoint policy belong to the caller: :meth:`Trainer.train` hands
every epoch's metrics to a callback, and :meth:`Trainer.state_dict` gathers everything a resume
needs (networks, optimizers, strategy, observation statistics, partial episodes, RNG).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from tensordict import TensorDictBase
from torch import Tensor, nn
from torchrl.collectors import BaseCollector

from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import ActorCritic


class Algorithm(Protocol):
    """What the trainer needs from a base algorithm (PPO, natural gradient, ...)."""

    strategy: Any

    def update(self, batch: TensorDictBase, episode_cost: Tensor) -> dict[str, float]:
        """One update; an ``episode_length`` keyword, if the method has one, receives the mean
        length of the episodes that finished in the batch (None when none did)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


EPOCH_SEED_STRIDE = 10_000  # room for that many environment copies per epoch

EpochCallback = Callable[[dict[str, float]], "bool | None"]


class Trainer:
    """Run epochs of collect -> statistics -> advantages -> strategy state -> update.

    Args:
        collector: a TorchRL collector (see :func:`gradmanip.rl.collect.make_collector`).
        algo: any object with ``update(batch, episode_cost) -> dict`` and a ``strategy``.
        actor_critic: the networks (checkpointed by :meth:`state_dict`).
        advantages: the GAE computation (see :class:`gradmanip.rl.advantages.SafeAdvantages`).
        episodes: episode statistics tracker (default: one per constraint of the cost critic,
            ``EpisodeTracker(num_constraints=actor_critic.num_costs)``).
        seed: if given, the environments are re-seeded with ``seed + EPOCH_SEED_STRIDE * epoch``
            before every epoch. With a collector made with ``reset_each_epoch=True`` each epoch
            then depends only on (seed, epoch) and the checkpointed state, so a run resumed from
            a checkpoint reproduces the uninterrupted run exactly (on CPU).
    """

    def __init__(
        self,
        collector: BaseCollector,
        algo: Algorithm,
        actor_critic: ActorCritic,
        advantages: SafeAdvantages,
        episodes: EpisodeTracker | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(collector, BaseCollector):
            raise TypeError(f"collector must be a torchrl BaseCollector, got {type(collector)}")
        if not callable(getattr(algo, "update", None)) or not hasattr(algo, "strategy"):
            raise TypeError(
                "algo must have update(batch, episode_cost) and a strategy attribute "
                f"(e.g. gradmanip.algos.PPO), got {type(algo).__name__}"
            )
        self.collector = collector
        self.algo = algo
        self.strategy = algo.strategy
        self.actor_critic = actor_critic
        self.advantages = advantages
        num_costs = getattr(actor_critic, "num_costs", None)
        if episodes is None:
            episodes = EpisodeTracker(num_constraints=num_costs or 1)
        elif num_costs is not None and episodes.num_constraints != num_costs:
            raise ValueError(
                f"episodes: the cost critic has {num_costs} output(s) (one per constraint) but "
                f"the EpisodeTracker counts {episodes.num_constraints} constraint(s); pass "
                f"EpisodeTracker(num_constraints={num_costs}, ...) or a cost critic with "
                f"{episodes.num_constraints} output(s)"
            )
        self.episodes = episodes
        if getattr(collector, "reset_at_each_iter", False) and self.episodes.carry_over:
            raise ValueError(
                "episodes: the collector starts fresh episodes every batch (reset_each_epoch), "
                "so partial episodes must not carry over: pass EpisodeTracker(carry_over=False)"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        # algorithms whose update reads the mean episode length (trust-region cost units)
        self._passes_length = "episode_length" in inspect.signature(algo.update).parameters
        self.epoch = 0
        self.frames = 0
        self._batches: Iterator[TensorDictBase] | None = None

    def __repr__(self) -> str:
        return (
            f"Trainer(algo={self.algo!r}, advantages={self.advantages!r}, "
            f"episodes={self.episodes!r}, epoch={self.epoch}, frames={self.frames})"
        )

    def next_batch(self) -> TensorDictBase:
        """The next batch of the collector (one iterator kept across epochs)."""
        if self.seed is not None:
            self.collector.set_seed(self.seed + EPOCH_SEED_STRIDE * self.epoch)
        if self._batches is None:
            self._batches = iter(self.collector)
        return next(self._batches)

    def run_epoch(self) -> dict[str, float]:
        """One policy iteration; returns its metrics (episode stats, losses, timings)."""
        start = time.perf_counter()
        batch = self.next_batch()
        collected = time.perf_counter()
        stats = self.episodes.update(batch)
        episode_cost = stats.episode_cost  # float64 from the episode sums on
        self.advantages(batch)
        estimated = time.perf_counter()
        self.strategy.update_state(episode_cost)
        if self._passes_length:
            length = float(stats.lengths.double().mean()) if stats.num_episodes else None
            algo_metrics = self.algo.update(batch.reshape(-1), episode_cost, episode_length=length)
        else:
            algo_metrics = self.algo.update(batch.reshape(-1), episode_cost)
        self.collector.update_policy_weights_()
        updated = time.perf_counter()
        self.epoch += 1
        self.frames += batch.numel()
        metrics = {"epoch": float(self.epoch), "frames": float(self.frames), **stats.summary()}
        metrics.update(algo_metrics)
        metrics.update(
            {
                "time/collect": collected - start,
                "time/advantages": estimated - collected,
                "time/update": updated - estimated,
                "time/epoch": updated - start,
            }
        )
        return metrics

    def train(self, epochs: int, callback: EpochCallback | None = None) -> list[dict[str, float]]:
        """Run ``epochs`` epochs; ``callback(metrics)`` after each (return True to stop)."""
        if isinstance(epochs, bool) or int(epochs) < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        history = []
        for _ in range(int(epochs)):
            metrics = self.run_epoch()
            history.append(metrics)
            if callback is not None and callback(metrics):
                break
        return history

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs: networks, algorithm (optimizers), strategy, collector
        (environment transforms such as observation statistics), partial episodes, counters and
        torch's global RNG."""
        networks: dict[str, nn.Module] = {
            "actor": self.actor_critic.actor,
            "reward_critic": self.actor_critic.reward_critic,
            "cost_critic": self.actor_critic.cost_critic,
        }
        return {
            "networks": {name: module.state_dict() for name, module in networks.items()},
            "algo": self.algo.state_dict(),
            "strategy": self.strategy.state_dict(),
            "collector": self.collector.state_dict(),
            "episodes": self.episodes.state_dict(),
            "epoch": self.epoch,
            "frames": self.frames,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same architecture and settings)."""
        self.actor_critic.actor.load_state_dict(state["networks"]["actor"])
        self.actor_critic.reward_critic.load_state_dict(state["networks"]["reward_critic"])
        self.actor_critic.cost_critic.load_state_dict(state["networks"]["cost_critic"])
        self.algo.load_state_dict(state["algo"])
        self.strategy.load_state_dict(state["strategy"])
        self.collector.load_state_dict(state["collector"])
        self.episodes.load_state_dict(state["episodes"])
        self.epoch = int(state["epoch"])
        self.frames = int(state["frames"])
        torch.set_rng_state(state["torch_rng"])
        self.collector.update_policy_weights_()
