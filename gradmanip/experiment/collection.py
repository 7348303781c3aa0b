"""The collector a run uses: the lean single-environment collector where it applies, TorchRL's
collectors (several environments or processes) otherwise.

Every epoch starts fresh episodes from a reset seeded by (seed, epoch) (``reset_each_epoch``
together with :class:`~gradmanip.rl.trainer.Trainer`'s seeding), so a run resumed from a
checkpoint reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import gymnasium
from torch import nn
from torchrl.collectors import BaseCollector

import safe_envs
from gradmanip.fast.lean_collector import make_lean_collector
from gradmanip.rl.collect import GaussianPolicy, make_collector
from safe_envs.obs_norm import RunningObsNorm, merge_statistics

COLLECTORS = ("auto", "lean", "torchrl")


def task_sizes(env_id: str, task_kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """(observation size, action size) from the task's Gymnasium spaces."""
    probe = gymnasium.make(env_id, **task_kwargs)
    sizes = probe.observation_space.shape[-1], probe.action_space.shape[-1]
    probe.close()
    return sizes


def seeded_task(env_id: str, seed: int, task_kwargs: Mapping[str, Any]) -> gymnasium.Env:
    """The Gymnasium task, reset once with ``seed`` (as ``safe_envs.make_env(seed=...)``)."""
    env = gymnasium.make(env_id, **task_kwargs)
    env.reset(seed=seed)
    return env


def make_run_collector(
    env_id: str,
    task_kwargs: Mapping[str, Any],
    policy_net: nn.Module,
    *,
    steps_per_epoch: int,
    seed: int,
    collector: str = "auto",
    num_workers: int = 1,
    envs_per_worker: int = 1,
    normalize_obs: bool = True,
    obs_clip: float = 5.0,
) -> BaseCollector:
    """``collector="auto"``: the lean collector for one environment in one process, TorchRL's
    otherwise; ``"lean"`` / ``"torchrl"`` choose explicitly. Both reset every epoch, and both
    yield costs ``[..., K]`` with K = ``safe_envs.num_costs(env_id)``."""
    if collector not in COLLECTORS:
        raise ValueError(f"collector must be one of {COLLECTORS}, got {collector!r}")
    single_env = num_workers == 1 and envs_per_worker == 1
    if collector == "lean" or (collector == "auto" and single_env):
        obs_dim = task_sizes(env_id, task_kwargs)[0]
        return make_lean_collector(
            functools.partial(seeded_task, env_id, seed, dict(task_kwargs)),
            policy_net,
            frames_per_batch=steps_per_epoch,
            seed=seed,
            reset_each_epoch=True,
            obs_norm=RunningObsNorm((obs_dim,), clip=obs_clip) if normalize_obs else None,
            num_costs=safe_envs.num_costs(env_id),
        )
    make_env = functools.partial(
        safe_envs.make_env,
        env_id,
        num_envs=envs_per_worker,
        seed=seed,
        normalize_obs=normalize_obs,
        obs_clip=obs_clip,
        **task_kwargs,
    )
    return make_collector(
        make_env,
        GaussianPolicy(policy_net),
        frames_per_batch=steps_per_epoch,
        num_workers=num_workers,
        seed=seed,
        reset_each_epoch=True,
    )


def pooled_obs_statistics(collector: BaseCollector) -> dict:
    """Observation statistics of every collector process, pooled into one normaliser state."""
    state = collector.state_dict()
    workers = [v for k, v in state.items() if k.startswith("worker")] or [state]
    return merge_statistics([w["env_state_dict"] for w in workers])
