"""The off-policy training loop (SAC and its kin): step, store, update, an epoch per N steps.

One epoch of ``steps_per_epoch`` environment steps::

    strategy.update_state(J_c_hat)                 # once per epoch: multipliers, slack annealing
    continue the running episode (or, for the first epoch, reset with seed)
    repeat steps_per_epoch times:
        action = uniform in the box (the first warmup_steps steps) or a ~ pi(.|s)
        step the environment, add the transition to the replay buffer
        after the warm-up: updates_per_step gradient steps on replay batches, each reading
        the live J_c_hat (mean cost of the last cost_window episodes)

Episodes run across epochs, as they would without epochs: an episode is counted in the
statistics (and J_c_hat) when it ends, whichever epoch it began in. The checkpoint holds the
running episode (the task's exact state, see :mod:`gradmanip.rl.episode_state`, its observation
and its return, cost and length so far) with the networks, optimizers, strategy, replay buffer,
episode window and torch's RNG, so a resumed run reproduces the uninterrupted one exactly.

A task whose state cannot be read (neither MuJoCo nor a ``get_state`` method) cannot be resumed
in the middle of an episode: there every epoch starts fresh episodes from a reset seeded by
(seed, epoch), and the episode running at the end of an epoch is cut (its transitions stay in
the buffer, the last one not terminal, so it is bootstrapped) and left out of the statistics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.data import TensorDictReplayBuffer
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor

from gradmanip.rl.episode_state import episode_state, has_episode_state, restore_episode_state
from gradmanip.rl.episode_window import EpisodeWindow
from gradmanip.rl.metric_names import constraint_columns
from gradmanip.rl.replay import buffer_state, load_buffer_state
from gradmanip.rl.trainer import EPOCH_SEED_STRIDE
from gradmanip.tanh_gaussian import sampler_or_none


class OffPolicyAlgorithm(Protocol):
    """What the loop needs from an off-policy base (e.g. :class:`gradmanip.algos.sac.SAC`)."""

    strategy: Any

    def update(self, batch: TensorDictBase, episode_cost: Tensor) -> dict[str, Any]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def epoch_means(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per metric, the mean over the epoch's update steps; a [K] metric with K > 1 gives one
    column per constraint, ``name_0`` ... ``name_{K-1}`` (see :mod:`gradmanip.rl.metric_names`)."""
    out: dict[str, float] = {}
    for name in dict.fromkeys(name for row in rows for name in row):  # in order of appearance
        values = [row[name] for row in rows if name in row]
        if isinstance(values[0], Tensor):
            stacked = torch.stack(values).double()
        else:
            stacked = torch.as_tensor(values, dtype=torch.float64)
        out.update(constraint_columns(name, stacked.mean(0).reshape(-1).tolist()))
    return out


class OffPolicyTrainer:
    """Run epochs of environment steps interleaved with replay updates (see the module
    docstring).

    Args:
        make_env: builds the Gymnasium task (cost in ``info["cost"]``, or ``info["costs"]``
            with K > 1 constraints).
        algo: the off-policy base (``update(batch, J_c_hat)``, ``strategy``, state).
        actor: the policy acting in the environment (a probabilistic actor; a tanh-Gaussian
            one of two layers is drawn by :class:`~gradmanip.tanh_gaussian.TanhGaussianSampler`,
            the same draws at less overhead).
        replay_buffer: see :func:`gradmanip.rl.replay.make_replay_buffer`.
        steps_per_epoch: environment steps per epoch (one strategy-state update each).
        warmup_steps: the first steps act uniformly at random and make no update.
        updates_per_step: the update-to-data ratio (``0.5``: one update every second step).
        cost_window: episodes averaged into J_c_hat.
        num_constraints: K.
        seed: the environment's first reset (and, for a task whose state cannot be read, the
            reset of epoch e) is seeded with ``seed + EPOCH_SEED_STRIDE * e``.
    """

    def __init__(
        self,
        make_env: Callable[[], Any],
        algo: OffPolicyAlgorithm,
        actor: ProbabilisticActor,
        replay_buffer: TensorDictReplayBuffer,
        *,
        steps_per_epoch: int,
        warmup_steps: int = 10_000,
        updates_per_step: float = 1.0,
        cost_window: int = 10,
        num_constraints: int = 1,
        seed: int = 0,
    ) -> None:
        if not callable(getattr(algo, "update", None)) or not hasattr(algo, "strategy"):
            raise TypeError(
                "algo must have update(batch, episode_cost) and a strategy attribute "
                f"(e.g. gradmanip.algos.SAC), got {type(algo).__name__}"
            )
        for name, value, low in (
            ("steps_per_epoch", steps_per_epoch, 1),
            ("warmup_steps", warmup_steps, 0),
            ("seed", seed, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(updates_per_step, bool) or not updates_per_step > 0:
            raise ValueError(f"updates_per_step must be a number > 0, got {updates_per_step!r}")
        self.env = make_env()
        self.algo = algo
        self.strategy = algo.strategy
        self.actor = actor
        self._sampler = sampler_or_none(actor)  # the actor's draws on plain tensors
        self.replay_buffer = replay_buffer
        self.steps_per_epoch = steps_per_epoch
        self.warmup_steps = warmup_steps
        self.updates_per_step = float(updates_per_step)
        self.episodes = EpisodeWindow(cost_window, num_constraints)
        self.num_constraints = num_constraints
        self.seed = seed
        self.epoch = 0
        self.frames = 0
        self.update_credit = 0.0
        self._running: dict[str, Any] | None = None  # the episode carried into the next epoch
        space = self.env.action_space
        self._low = torch.as_tensor(space.low, dtype=torch.float32)
        self._width = torch.as_tensor(space.high, dtype=torch.float32) - self._low
        obs_dim = self.env.observation_space.shape[-1]
        self._step = TensorDict(
            {
                "observation": torch.zeros(obs_dim),
                "action": torch.zeros(space.shape[-1]),
                "next": {
                    "observation": torch.zeros(obs_dim),
                    "reward": torch.zeros(1),
                    "cost": torch.zeros(num_constraints),
                    "done": torch.zeros(1, dtype=torch.bool),
                    "terminated": torch.zeros(1, dtype=torch.bool),
                    "truncated": torch.zeros(1, dtype=torch.bool),
                },
            }
        )

    def __repr__(self) -> str:
        return (
            f"OffPolicyTrainer(algo={self.algo!r}, steps_per_epoch={self.steps_per_epoch}, "
            f"warmup_steps={self.warmup_steps}, updates_per_step={self.updates_per_step}, "
            f"episodes={self.episodes!r}, epoch={self.epoch}, frames={self.frames})"
        )

    def _cost(self, info: dict) -> list[float]:
        if self.num_constraints == 1:
            return [float(info.get("cost", 0.0))]
        return [float(c) for c in np.asarray(info["costs"]).reshape(-1)]

    @torch.no_grad()
    def _act(self, observation: Tensor) -> Tensor:
        if self.frames < self.warmup_steps:
            return self._low + self._width * torch.rand(self._width.shape)
        if self._sampler is not None:
            return self._sampler.act(observation)
        with set_exploration_type(ExplorationType.RANDOM):
            return self.actor(TensorDict({"observation": observation})).get("action")

    def run_epoch(self) -> dict[str, float]:
        """One epoch of ``steps_per_epoch`` steps; returns its metrics."""
        start = time.perf_counter()
        self.strategy.update_state(self.episodes.episode_cost)
        if self._running is None:
            obs, _ = self.env.reset(seed=self.seed + EPOCH_SEED_STRIDE * self.epoch)
            observation = torch.as_tensor(obs, dtype=torch.float32)
            episode_return, episode_cost, length = 0.0, [0.0] * self.num_constraints, 0
        else:
            running = self._running
            observation = running["observation"]
            episode_return, episode_cost = running["return"], list(running["cost"])
            length = running["length"]
        finished = 0
        rows: list[dict[str, Any]] = []
        update_time = 0.0
        step = self._step
        for _ in range(self.steps_per_epoch):
            action = self._act(observation)
            obs, reward, terminated, truncated, info = self.env.step(action.numpy())
            cost = self._cost(info)
            next_observation = torch.as_tensor(obs, dtype=torch.float32)
            step["observation"].copy_(observation)
            step["action"].copy_(action)
            following = step["next"]
            following["observation"].copy_(next_observation)
            following["reward"].fill_(float(reward))
            following["cost"].copy_(torch.as_tensor(cost))
            following["terminated"].fill_(bool(terminated))
            following["truncated"].fill_(bool(truncated))
            following["done"].fill_(bool(terminated or truncated))
            self.replay_buffer.add(step)
            self.frames += 1
            episode_return += float(reward)
            episode_cost = [a + b for a, b in zip(episode_cost, cost, strict=True)]
            length += 1
            if terminated or truncated:
                self.episodes.add(episode_return, episode_cost, length)
                finished += 1
                episode_return, episode_cost, length = 0.0, [0.0] * self.num_constraints, 0
                obs, _ = self.env.reset()
                next_observation = torch.as_tensor(obs, dtype=torch.float32)
            observation = next_observation
            if (
                self.frames > self.warmup_steps
                and len(self.replay_buffer) >= self.replay_buffer.batch_size
            ):
                self.update_credit += self.updates_per_step
                began = time.perf_counter()
                while self.update_credit >= 1.0:
                    self.update_credit -= 1.0
                    rows.append(
                        self.algo.update(self.replay_buffer.sample(), self.episodes.episode_cost)
                    )
                update_time += time.perf_counter() - began
        self.epoch += 1
        self._running = (
            {
                "observation": observation,
                "return": episode_return,
                "cost": episode_cost,
                "length": length,
            }
            if has_episode_state(self.env)
            else None
        )
        elapsed = time.perf_counter() - start
        metrics = {
            "epoch": float(self.epoch),
            "frames": float(self.frames),
            "episodes": float(finished),
        }
        metrics.update(self.episodes.summary())
        metrics["updates"] = float(len(rows))
        if rows:
            metrics.update(epoch_means(rows))
        metrics.update(
            {
                "time/update": update_time,
                "time/collect": elapsed - update_time,
                "time/epoch": elapsed,
            }
        )
        return metrics

    def train(self, epochs: int) -> list[dict[str, float]]:
        """Run ``epochs`` epochs; returns their metrics."""
        return [self.run_epoch() for _ in range(int(epochs))]

    def shutdown(self) -> None:
        """Close the environment."""
        self.env.close()

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs: actor, algorithm (critics, targets, temperature,
        optimizers), strategy, replay buffer (its filled rows, views of the storage: no copy),
        episode window, counters and torch's global RNG."""
        return {
            "networks": {"actor": self.actor.state_dict()},
            "algo": self.algo.state_dict(),
            "strategy": self.strategy.state_dict(),
            "replay_buffer": buffer_state(self.replay_buffer),
            "episodes": self.episodes.state_dict(),
            "epoch": self.epoch,
            "frames": self.frames,
            "update_credit": self.update_credit,
            "running_episode": None
            if self._running is None
            else self._running | {"task": episode_state(self.env)},
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same architecture and settings)."""
        self.actor.load_state_dict(state["networks"]["actor"])
        self.algo.load_state_dict(state["algo"])
        self.strategy.load_state_dict(state["strategy"])
        load_buffer_state(self.replay_buffer, state["replay_buffer"])
        self.episodes.load_state_dict(state["episodes"])
        self.epoch = int(state["epoch"])
        self.frames = int(state["frames"])
        self.update_credit = float(state["update_credit"])
        running = state.get("running_episode")
        self._running = None
        if running is not None:
            self.env.reset(seed=self.seed)
            restore_episode_state(self.env, running["task"])
            self._running = {k: v for k, v in running.items() if k != "task"}
        torch.set_rng_state(state["torch_rng"])
