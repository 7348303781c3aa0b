"""TorchRL entry point: ``make_env(id, ...)`` -> an ``EnvBase`` whose rollouts carry the cost.

The Gymnasium task is wrapped with TorchRL's ``GymWrapper``; ``CostInfoReader`` copies
``info["cost"]`` into ``("next", "cost")`` with the dtype of ``("next", "reward")``: shape
``[..., 1]``, or ``[..., K]`` read from ``info["costs"]`` for a task with K constraints.
Observations are cast to float32 on the Gymnasium side (``Float32Observation``, a numpy cast:
far cheaper per step than a TorchRL ``DoubleToFloat`` transform); ``RunningObsNorm`` is the only
TorchRL transform, added when ``normalize_obs=True``.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.data import Composite, Unbounded
from torchrl.envs import (
    EnvBase,
    GymWrapper,
    ParallelEnv,
    SerialEnv,
    TransformedEnv,
)
from torchrl.envs.gym_like import BaseInfoDictReader

from safe_envs.obs_norm import RunningObsNorm
from safe_envs.registry import task_entry
from safe_envs.validation import check_positive_int


class CostInfoReader(BaseInfoDictReader):
    """Reads ``info[key]`` (a float) into a float32 ``[num_costs]`` entry, like the reward.

    With ``num_costs`` = K > 1 the K values come from ``info[key + "s"]`` (e.g. ``info["costs"]``).
    A missing key reads as zeros: reset infos may carry no cost (nothing has happened yet).
    """

    def __init__(self, keys: tuple[str, ...] = ("cost",), num_costs: int = 1) -> None:
        self.keys = tuple(keys)
        self.num_costs = check_positive_int("num_costs", num_costs)
        self._spec = Composite(
            {key: Unbounded(shape=(self.num_costs,), dtype=torch.float32) for key in self.keys},
            shape=(),
        )

    def __call__(self, info_dict: dict[str, Any], tensordict: TensorDictBase) -> TensorDictBase:
        for key in self.keys:
            if self.num_costs == 1:
                tensordict.set(key, torch.tensor([info_dict.get(key, 0.0)], dtype=torch.float32))
                continue
            values = info_dict.get(f"{key}s")
            if values is None:
                values = np.zeros(self.num_costs)
            cost = torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(-1))
            if cost.shape != (self.num_costs,):
                raise ValueError(
                    f"info[{key + 's'!r}] has {cost.numel()} values; the task declares "
                    f"num_costs={self.num_costs}."
                )
            tensordict.set(key, cost)
        return tensordict

    @property
    def info_spec(self) -> Composite:
        return self._spec

    def __repr__(self) -> str:
        return f"CostInfoReader(keys={self.keys}, num_costs={self.num_costs})"


class Float32Observation(gymnasium.ObservationWrapper):
    """Casts a Box observation (and its space) to float32."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gymnasium.spaces.Box(
            low=space.low.astype(np.float32),
            high=space.high.astype(np.float32),
            shape=space.shape,
            dtype=np.float32,
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation.astype(np.float32, copy=False)


def _make_gymnasium(env_id: str, task_kwargs: dict[str, Any]) -> gymnasium.Env:
    """``gymnasium.make`` whose bad parameters raise ``ValueError`` naming them."""
    if "max_episode_steps" in task_kwargs:
        check_positive_int("max_episode_steps", task_kwargs["max_episode_steps"])
    try:
        return gymnasium.make(env_id, **task_kwargs)
    except TypeError as err:
        raise ValueError(f"invalid task parameter for {env_id}: {err}") from None


def _wrap(
    gym_env: gymnasium.Env, seed: int | None, device: str | torch.device, num_costs: int = 1
) -> EnvBase:
    # an explicit CPU device makes GymWrapper move every step's data: pass only other devices
    device_kwargs = {} if torch.device(device).type == "cpu" else {"device": device}
    env = GymWrapper(Float32Observation(gym_env), **device_kwargs)
    env.set_info_dict_reader(CostInfoReader(num_costs=num_costs))
    if seed is not None:
        env.set_seed(seed)
    return env


def _make_single(
    env_id: str, seed: int | None, device: str | torch.device, task_kwargs: dict[str, Any]
) -> EnvBase:
    return _wrap(_make_gymnasium(env_id, task_kwargs), seed, device, task_entry(env_id).num_costs)


def make_env(
    env_id: str,
    num_envs: int = 1,
    seed: int | None = None,
    *,
    normalize_obs: bool = False,
    obs_clip: float = 5.0,
    parallel: bool = False,
    device: str | torch.device = "cpu",
    **task_kwargs: Any,
) -> EnvBase:
    """TorchRL environment of a registered ``safe_envs`` task.

    Rollouts carry float32 ``"observation"``, ``"action"``, ``("next", "reward")`` and
    ``("next", "cost")`` (float32; ``[..., 1]``, or ``[..., K]`` for a task with K constraints,
    K = ``safe_envs.num_costs(env_id)``) and ``done/terminated/truncated``.

    Args:
        env_id: a registered id (see :func:`safe_envs.available_ids`).
        num_envs: copies; > 1 gives a batch of ``[num_envs]`` (``SerialEnv``, or ``ParallelEnv``
            with ``parallel=True``). Copy ``i`` is seeded with ``seed + i``.
        seed: base seed (``None``: unseeded).
        normalize_obs: return ``TransformedEnv(base, RunningObsNorm(...))`` (clip 5); reach
            the normaliser with ``env.transform`` to save, load or freeze its statistics.
        obs_clip: bound of the normalised observations (the paper clips at 5).
        parallel: use worker processes for ``num_envs > 1``.
        device: device of the TorchRL tensors.
        **task_kwargs: task parameters (e.g. ``velocity_threshold``, ``goal_velocity``,
            ``max_episode_steps``), passed to ``gymnasium.make``.
    """
    num_costs = task_entry(env_id).num_costs
    num_envs = check_positive_int("num_envs", num_envs)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    first = _make_gymnasium(env_id, task_kwargs)  # bad parameters fail here, before any work
    obs_size = int(first.observation_space.shape[-1])
    if num_envs == 1:
        base: EnvBase = _wrap(first, seed, device, num_costs)
    else:
        first.close()
        factories = [
            functools.partial(
                _make_single, env_id, None if seed is None else seed + i, device, task_kwargs
            )
            for i in range(num_envs)
        ]
        batched = ParallelEnv if parallel else SerialEnv
        base = batched(num_envs, factories, device=device)
    if normalize_obs:
        return TransformedEnv(base, RunningObsNorm(shape=(obs_size,), clip=obs_clip))
    return base
