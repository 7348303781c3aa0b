"""A lean single-environment collector: Gymnasium stepped directly, policy in plain torch.

:class:`LeanCollector` is a TorchRL :class:`~torchrl.collectors.BaseCollector` (it plugs in
wherever a collector is expected, e.g. :class:`gradmanip.rl.trainer.Trainer`) that skips TorchRL's
per-step environment machinery: it calls ``env.step`` on a Gymnasium environment, runs the
policy network (``observation -> (loc, scale)``) with plain torch ops and writes every step into
preallocated NumPy arrays that become the batch's tensors without a copy. Each batch is one
TensorDict with the keys, shapes and dtypes that :func:`gradmanip.rl.collect.make_collector` yields
for one environment (batch shape ``[T]``):
``"observation"``, ``"action"``, ``"loc"``, ``"scale"``, ``"action_log_prob"``, ``"cost"``,
``"done"``, ``"terminated"``, ``"truncated"`` and under ``"next"``: ``"observation"``,
``"reward"``, ``"cost"``, ``"done"``, ``"terminated"``, ``"truncated"``.

The step semantics follow TorchRL's ``Collector`` over ``GymWrapper`` exactly, so the same seed
and the same policy noise give the same batches:

- the first reset happens at construction (unseeded); ``set_seed(seed)`` then calls
  ``env.reset(seed=seed)`` and discards that observation (TorchRL keeps the observation it
  already holds), so the seeded generator drives every later reset;
- a finished episode (terminated or truncated) is reset inside the step; the root ``"cost"`` is
  the previous step's cost, or the reset's ``info["cost"]`` (0 when absent) after a reset;
- with ``num_costs`` = K > 1 constraints the costs are ``[T, K]``, read from ``info["costs"]``
  (K values per step, as ``safe_envs`` tasks with several constraints report them);
- with ``reset_at_each_iter`` every batch starts with a fresh episode;
- an observation normaliser (e.g. ``safe_envs.RunningObsNorm``) sees every reset and step
  observation, updating its statistics first (unless ``frozen``) and then normalising.

``gradmanip.fast`` does not depend on ``safe_envs``: pass an environment factory
(``functools.partial(gymnasium.make, "SafetyHopperVelocity-v1")``) and, for normalisation, a
normaliser object.

One module: a TorchRL collector is one class with the whole collector interface (iteration,
seeding, state, policy weights, shutdown) beside its stepping loop.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn
from torchrl.collectors import BaseCollector
from torchrl.envs.utils import ExplorationType

from gradmanip.gaussian import MEAN_ACTION_EXPLORATION, standardized_log_prob


@runtime_checkable
class ObservationNormalizer(Protocol):
    """What :class:`LeanCollector` needs from a normaliser (``safe_envs.RunningObsNorm`` fits):
    ``update`` merges observations into running statistics, ``normalize`` applies them."""

    def update(self, obs: Tensor) -> None: ...

    def normalize(self, obs: Tensor) -> Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...


class RunningMomentsView:
    """NumPy fast path over a normaliser that keeps running moments in float64 buffers
    ``count``, ``mean``, ``sum_sq_dev``, ``std`` and settings ``clip``, ``eps`` (the layout of
    ``safe_envs.RunningObsNorm``): one observation is merged with the same parallel-moments
    formula (Chan et al.) and normalised as ``clip((obs - mean) / (std + eps))`` in float32,
    in place on the normaliser's own buffers (its ``state_dict()`` stays current)."""

    def __init__(
        self, count: Tensor, mean: Tensor, sum_sq_dev: Tensor, std: Tensor, clip: float, eps: float
    ) -> None:
        self.count = count.numpy()  # 0-d views sharing memory with the normaliser's buffers
        self.mean = mean.numpy()
        self.sum_sq_dev = sum_sq_dev.numpy()
        self.std = std.numpy()
        self.clip = np.float32(clip)
        self.eps = float(eps)

    @classmethod
    def of(cls, norm: Any, obs_dim: int) -> RunningMomentsView | None:
        """A view of ``norm``'s buffers if it has that layout (float64, CPU, ``[obs_dim]``),
        else ``None`` (the collector then calls ``norm.update`` / ``norm.normalize``)."""
        if norm is None:
            return None
        names = ("count", "mean", "sum_sq_dev", "std")
        buffers = [getattr(norm, name, None) for name in names]
        if not all(
            isinstance(b, Tensor)
            and b.dtype == torch.float64
            and b.device.type == "cpu"
            and b.is_contiguous()
            for b in buffers
        ):
            return None
        shapes = [tuple(b.shape) for b in buffers]
        if shapes != [(), (obs_dim,), (obs_dim,), (obs_dim,)]:
            return None
        clip, eps = getattr(norm, "clip", None), getattr(norm, "eps", None)
        if not isinstance(clip, float) or not isinstance(eps, float):
            return None
        return cls(*buffers, clip=clip, eps=eps)

    def observe(self, obs: np.ndarray, frozen: bool) -> np.ndarray:
        """Merge ``obs`` [obs_dim] (unless ``frozen``), then return it normalised (float32)."""
        if not frozen:
            x = obs.astype(np.float64)
            count = self.count.item()
            total = count + 1.0
            delta = x - self.mean
            self.mean += delta * (1.0 / total)
            self.sum_sq_dev += delta * delta * (count / total)
            self.count[...] = total
            np.sqrt(self.sum_sq_dev / total, out=self.std)
        mean = self.mean.astype(np.float32)
        std = self.std.astype(np.float32)
        return np.clip((obs - mean) / (std + self.eps), -self.clip, self.clip)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _flat_size(space: Any, name: str) -> int:
    shape = getattr(space, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"the environment's {name} must be a 1-D Box (flat vector), got {space!r}")
    return int(shape[0])


class LeanCollector(BaseCollector):
    """Collect ``frames_per_batch`` steps of one Gymnasium environment per batch.

    Args:
        env_fn: builds the Gymnasium environment (flat Box observation and action spaces;
            the per-step cost is read from ``info["cost"]``).
        policy_net: ``observation [obs_dim] -> (loc, scale)`` (e.g. ``actor_critic.policy_net``),
            shared, not copied: updates to it are seen at the next step.
        frames_per_batch: environment steps per batch (``T``).
        total_frames: stop after this many steps (``-1``: never).
        obs_norm: optional observation normaliser (see :class:`ObservationNormalizer`); its
            ``state_dict()`` is this collector's ``"env_state_dict"``.
        reset_at_each_iter: start every batch with a fresh episode (the episode running at the
            end of a batch is abandoned).
        exploration_type: ``RANDOM`` samples actions; ``DETERMINISTIC`` (or ``MODE``/``MEAN``)
            takes the mean.
        num_costs: K, the number of constraints: ``1`` reads ``info["cost"]`` (a float), K > 1
            reads ``info["costs"]`` (K values); the batch's costs are ``[T, K]``.
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        policy_net: nn.Module,
        *,
        frames_per_batch: int,
        total_frames: int = -1,
        obs_norm: ObservationNormalizer | None = None,
        reset_at_each_iter: bool = False,
        exploration_type: ExplorationType = ExplorationType.RANDOM,
        num_costs: int = 1,
    ) -> None:
        if not callable(env_fn):
            raise TypeError(f"env_fn must be a callable returning a Gymnasium env, got {env_fn!r}")
        if not isinstance(policy_net, nn.Module):
            raise TypeError(
                "policy_net must be an nn.Module mapping observation -> (loc, scale) "
                f"(e.g. actor_critic.policy_net), got {type(policy_net).__name__}"
            )
        frames_per_batch = _check_positive_int("frames_per_batch", frames_per_batch)
        self.num_costs = _check_positive_int("num_costs", num_costs)
        if isinstance(total_frames, bool) or not isinstance(total_frames, int):
            raise ValueError(
                f"total_frames must be an integer (-1: never stop), got {total_frames!r}"
            )
        if total_frames != -1 and total_frames < 1:
            raise ValueError(
                f"total_frames must be positive or -1 (never stop), got {total_frames}"
            )
        if obs_norm is not None and not isinstance(obs_norm, ObservationNormalizer):
            raise TypeError(
                "obs_norm must provide update(obs), normalize(obs), state_dict() and "
                f"load_state_dict() (e.g. safe_envs.RunningObsNorm), got {type(obs_norm).__name__}"
            )
        if not isinstance(exploration_type, ExplorationType):
            raise TypeError(
                f"exploration_type must be an ExplorationType, got {exploration_type!r}"
            )
        super().__init__()
        env = env_fn()
        if not (callable(getattr(env, "step", None)) and callable(getattr(env, "reset", None))):
            raise TypeError(f"env_fn must return a Gymnasium env (reset/step), got {env!r}")
        self.env = env
        self.obs_dim = _flat_size(env.observation_space, "observation_space")
        self.action_dim = _flat_size(env.action_space, "action_space")
        self.policy_net = policy_net
        self.obs_norm = obs_norm
        self._moments = RunningMomentsView.of(obs_norm, self.obs_dim)
        self.frames_per_batch = frames_per_batch
        self.requested_frames_per_batch = frames_per_batch
        self.total_frames = math.inf if total_frames == -1 else total_frames
        self.reset_at_each_iter = bool(reset_at_each_iter)
        self.exploration_type = exploration_type
        self.closed = False
        self._frames = 0
        self._iter = -1
        self._reset()  # like TorchRL's Collector: the first episode starts at construction

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={self.env!r}, frames_per_batch={self.frames_per_batch}, "
            f"total_frames={self.total_frames}, obs_norm={self.obs_norm!r}, "
            f"reset_at_each_iter={self.reset_at_each_iter}, "
            f"exploration_type={self.exploration_type}, num_costs={self.num_costs}, "
            f"frames={self._frames})"
        )

    # ------------------------------------------------------------------------------ stepping
    def _observe(self, raw: np.ndarray) -> np.ndarray:
        """A float32 observation, normalised (statistics updated first) if configured."""
        obs = np.asarray(raw, dtype=np.float32)
        norm = self.obs_norm
        if norm is None:
            return obs
        frozen = bool(getattr(norm, "frozen", False))
        if self._moments is not None:
            return self._moments.observe(obs, frozen)
        obs_t = torch.from_numpy(obs)
        if not frozen:
            norm.update(obs_t)
        return norm.normalize(obs_t).numpy()

    def _costs(self, info: dict[str, Any]) -> float | np.ndarray:
        """The step's cost: ``info["cost"]`` (K = 1) or ``info["costs"]`` (K values)."""
        if self.num_costs == 1:
            return float(info.get("cost", 0.0))
        if "costs" not in info:
            return np.zeros(self.num_costs, dtype=np.float32)
        costs = np.asarray(info["costs"], dtype=np.float32).reshape(-1)
        if costs.shape != (self.num_costs,):
            raise ValueError(
                f"info['costs'] holds {costs.size} value(s) but the collector was built with "
                f"num_costs={self.num_costs}; pass num_costs=safe_envs.num_costs(env_id)"
            )
        return costs

    def _reset(self) -> None:
        raw, info = self.env.reset()
        self._obs = self._observe(raw)
        self._root_cost = self._costs(info)

    def rollout(self) -> TensorDictBase:
        """One batch of ``frames_per_batch`` steps (batch shape ``[T]``)."""
        if self.closed:
            raise RuntimeError("the collector was shut down; build a new one to collect again")
        # re-read the normaliser's buffers: they may have been replaced since (e.g. by .to())
        self._moments = RunningMomentsView.of(self.obs_norm, self.obs_dim)
        if self.reset_at_each_iter:
            self._reset()
        steps, obs_dim, action_dim = self.frames_per_batch, self.obs_dim, self.action_dim
        # NumPy buffers: per-step writes are far cheaper than tensor indexing
        observation = np.empty((steps, obs_dim), dtype=np.float32)
        next_observation = np.empty((steps, obs_dim), dtype=np.float32)
        loc = np.empty((steps, action_dim), dtype=np.float32)
        scale = np.empty((steps, action_dim), dtype=np.float32)
        action = np.empty((steps, action_dim), dtype=np.float32)
        noise = np.zeros((steps, action_dim), dtype=np.float32)
        reward = np.empty((steps, 1), dtype=np.float32)
        cost = np.empty((steps, self.num_costs), dtype=np.float32)
        root_cost = np.empty((steps, self.num_costs), dtype=np.float32)
        terminated = np.zeros((steps, 1), dtype=bool)
        truncated = np.zeros((steps, 1), dtype=bool)
        env, policy_net = self.env, self.policy_net
        sample = self.exploration_type not in MEAN_ACTION_EXPLORATION
        with torch.no_grad():
            for t in range(steps):
                obs = self._obs
                observation[t] = obs
                loc_t, scale_t = policy_net(torch.from_numpy(obs))
                loc[t] = loc_np = loc_t.numpy()
                scale[t] = scale_np = scale_t.numpy()
                if sample:  # the generator draws as GaussianSampler's randn_like does
                    noise[t] = noise_np = torch.randn_like(loc_t).numpy()
                    act = loc_np + scale_np * noise_np
                else:
                    act = loc_np
                action[t] = act
                raw, step_reward, term, trunc, info = env.step(act)
                step_cost = self._costs(info)
                next_obs = self._observe(raw)
                next_observation[t] = next_obs
                reward[t, 0] = step_reward
                cost[t] = step_cost
                root_cost[t] = self._root_cost
                terminated[t, 0] = term
                truncated[t, 0] = trunc
                if term or trunc:
                    self._reset()
                else:
                    self._obs, self._root_cost = next_obs, step_cost
        observation, next_observation, loc, scale, action, noise = map(
            torch.from_numpy, (observation, next_observation, loc, scale, action, noise)
        )
        log_prob = standardized_log_prob(noise, scale)  # as GaussianSampler
        terminated_t = torch.from_numpy(terminated)
        truncated_t = torch.from_numpy(truncated)
        not_done = torch.zeros(steps, 1, dtype=torch.bool)
        return TensorDict(
            {
                "observation": observation,
                "action": action,
                "loc": loc,
                "scale": scale,
                "action_log_prob": log_prob,
                "cost": torch.from_numpy(root_cost),
                "done": not_done,
                "terminated": not_done.clone(),
                "truncated": not_done.clone(),
                "next": TensorDict(
                    {
                        "observation": next_observation,
                        "reward": torch.from_numpy(reward),
                        "cost": torch.from_numpy(cost),
                        "done": terminated_t | truncated_t,
                        "terminated": terminated_t,
                        "truncated": truncated_t,
                    },
                    [steps],
                ),
            },
            [steps],
        )

    def iterator(self) -> Iterator[TensorDictBase]:
        """Batches until ``total_frames`` steps have been collected (forever with ``-1``)."""
        while self._frames < self.total_frames:
            self._iter += 1
            batch = self.rollout()
            self._frames += batch.numel()
            yield batch

    # ------------------------------------------------------------------- collector interface
    def set_seed(self, seed: int, static_seed: bool = False) -> int:
        """Seed the environment (``env.reset(seed=seed)``, observation discarded as TorchRL
        does); returns the next seed to use, as TorchRL environments do."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.env.reset(seed=seed)
        return seed if static_seed else next_seed(seed)

    def update_policy_weights_(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: the policy network is shared, not copied."""

    def state_dict(self) -> OrderedDict:
        """``{"env_state_dict": normaliser statistics (empty without one), "frames", "iter"}``:
        the layout of TorchRL's ``Collector`` (without its copy of the policy weights)."""
        env_state = self.obs_norm.state_dict() if self.obs_norm is not None else OrderedDict()
        return OrderedDict(env_state_dict=env_state, frames=self._frames, iter=self._iter)

    def load_state_dict(self, state_dict: dict[str, Any], **kwargs: Any) -> None:
        """Restore a :meth:`state_dict` (normaliser statistics and counters)."""
        missing = {"env_state_dict", "frames", "iter"} - set(state_dict)
        if missing:
            raise KeyError(f"state_dict lacks {sorted(missing)}: pass LeanCollector.state_dict()")
        env_state = state_dict["env_state_dict"]
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(env_state)
            self._moments = RunningMomentsView.of(self.obs_norm, self.obs_dim)
        elif len(env_state):
            raise KeyError(
                "state_dict holds observation statistics but this collector has no obs_norm: "
                "build it with the same normaliser"
            )
        self._frames = int(state_dict["frames"])
        self._iter = int(state_dict["iter"])

    def shutdown(self, timeout: float | None = None, close_env: bool = True, **kwargs: Any) -> None:
        """Close the environment (idempotent)."""
        if not self.closed:
            self.closed = True
            if close_env:
                self.env.close()


def make_lean_collector(
    env_fn: Callable[[], Any],
    policy_net: nn.Module,
    *,
    frames_per_batch: int,
    total_frames: int = -1,
    seed: int | None = None,
    reset_each_epoch: bool = False,
    obs_norm: ObservationNormalizer | None = None,
    num_costs: int = 1,
) -> LeanCollector:
    """A :class:`LeanCollector` set up like :func:`gradmanip.rl.collect.make_collector` with one
    worker: ``seed`` seeds the environment, ``reset_each_epoch`` starts every batch with a
    fresh episode. With ``env_fn=functools.partial(gymnasium.make, id)`` and
    ``obs_norm=safe_envs.RunningObsNorm((obs_dim,))`` it yields the batches of
    ``make_collector(functools.partial(safe_envs.make_env, id, normalize_obs=True), ...)``.
    The first reset happens when the collector is built, before ``seed`` applies: for
    repeatable runs let ``env_fn`` seed the environment too (``env.reset(seed=...)``).
    ``num_costs`` = K > 1 reads the K costs of ``info["costs"]`` (see :class:`LeanCollector`)."""
    collector = LeanCollector(
        env_fn,
        policy_net,
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        obs_norm=obs_norm,
        reset_at_each_iter=reset_each_epoch,
        num_costs=num_costs,
    )
    if seed is not None:
        collector.set_seed(seed)
    return collector


def next_seed(seed: int) -> int:
    """The seed after ``seed`` in the chain TorchRL's collectors use between environments and
    batches, so that this collector's batches equal theirs on the same seed."""
    return int.from_bytes(np.random.default_rng(seed).bytes(8), "big") % (2**32 - 1)
