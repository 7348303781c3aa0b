"""Constrained MuJoCo tasks for safe reinforcement learning.

``import safe_envs`` registers every task with Gymnasium; ``gymnasium.make(id)`` then returns an
env whose ``info["cost"]`` is the non-negative per-step cost (with its terms alongside); tasks
with K > 1 constraints (``num_costs(id)``) also report the K costs in ``info["costs"]``.
:func:`make_env` returns the TorchRL version, with ``("next", "cost")`` in its rollouts. The
TorchRL parts (``make_env``, ``CostInfoReader``, ``RunningObsNorm``) are imported on first use,
so Gymnasium-only users do not pay for importing TorchRL.
"""

from __future__ import annotations

import importlib
from typing import Any

from safe_envs import catalogue as _catalogue  # noqa: F401  (registers the tasks)
from safe_envs import gym_errors as _gym_errors
from safe_envs.registry import (
    TaskEntry,
    UnknownTaskError,
    available_ids,
    default_cost_limit,
    num_costs,
    register_task,
    task_entry,
)

_gym_errors.install()

_LAZY = {
    "make_env": "safe_envs.torchrl_env",
    "CostInfoReader": "safe_envs.torchrl_env",
    "RunningObsNorm": "safe_envs.obs_norm",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'safe_envs' has no attribute {name!r}")


__all__ = [
    "CostInfoReader",
    "RunningObsNorm",
    "TaskEntry",
    "UnknownTaskError",
    "available_ids",
    "default_cost_limit",
    "make_env",
    "num_costs",
    "register_task",
    "task_entry",
]
