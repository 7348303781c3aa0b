"""Tasks with K = 2 constraints: the velocity cost plus an effort cost.

Per step, with ``a`` the action clipped to the action space (what the base applies: MuJoCo clamps
``data.ctrl`` to the actuators' ``ctrlrange``, which is the action space)::

    cost_velocity = 1[v > velocity_threshold]   (as in the Safety<base>Velocity-v1 task)
    cost_effort   = 1[|a|^2 > effort_budget]    (strict)

``info["costs"]`` = ``[cost_velocity, cost_effort]`` (float64 array, in that order),
``info["cost"]`` = their sum, ``info["effort"]`` = ``|a|^2``. Observation, reward and termination
are the base's.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from safe_envs.validation import check_real
from safe_envs.velocity import make_velocity_task

#: base -> default effort budget: 0.25 per actuator (an RMS action of 0.5 per actuator)
EFFORT_BUDGETS: dict[str, float] = {
    "Hopper": 0.75,
    "Walker2d": 1.5,
    "HalfCheetah": 1.5,
    "Ant": 2.0,
}

#: the cost terms, in the order of ``info["costs"]``
COST_TERMS: tuple[str, ...] = ("cost_velocity", "cost_effort")


class EffortCost(gymnasium.Wrapper):
    """Adds ``info["effort"] = |clip(a)|^2`` and ``info["cost_effort"] = 1[effort > budget]``."""

    def __init__(self, env: gymnasium.Env, effort_budget: float) -> None:
        super().__init__(env)
        self.effort_budget = check_real("effort_budget", effort_budget, minimum=0.0)
        self._low = np.asarray(env.action_space.low, dtype=np.float64)
        self._high = np.asarray(env.action_space.high, dtype=np.float64)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        applied = np.clip(np.asarray(action, dtype=np.float64).ravel(), self._low, self._high)
        effort = float(applied @ applied)
        info["effort"] = effort
        info["cost_effort"] = 1.0 if effort > self.effort_budget else 0.0
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        info["effort"] = 0.0
        info["cost_effort"] = 0.0
        return obs, info

    def __repr__(self) -> str:
        return f"EffortCost({self.env!r}, effort_budget={self.effort_budget})"


class StackedCosts(gymnasium.Wrapper):
    """Sets ``info["costs"]`` = the ``terms`` (info keys) in order and ``info["cost"]`` = sum."""

    def __init__(self, env: gymnasium.Env, terms: tuple[str, ...]) -> None:
        super().__init__(env)
        self.terms = tuple(terms)
        self.num_costs = len(self.terms)

    def _stack(self, info: dict[str, Any]) -> dict[str, Any]:
        costs = np.array([info[term] for term in self.terms], dtype=np.float64)
        info["costs"] = costs
        info["cost"] = float(costs.sum())
        return info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._stack(info)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, self._stack(info)

    def __repr__(self) -> str:
        return f"StackedCosts({self.env!r}, terms={self.terms})"


def make_velocity_effort_task(
    base: str,
    velocity_threshold: float | None = None,
    effort_budget: float | None = None,
    base_version: str = "v4",
    render_mode: str | None = None,
) -> StackedCosts:
    """Entry point of the ``Safety<base>VelocityEffort-v1`` ids.

    ``velocity_threshold`` defaults to the ``Safety<base>Velocity-v1`` threshold and
    ``effort_budget`` to ``EFFORT_BUDGETS[base]``; ``base_version`` as for the velocity tasks.
    """
    if base not in EFFORT_BUDGETS:
        raise ValueError(f"base must be one of {sorted(EFFORT_BUDGETS)}, got {base!r}.")
    budget = EFFORT_BUDGETS[base] if effort_budget is None else effort_budget
    budget = check_real("effort_budget", budget, minimum=0.0)
    env = make_velocity_task(base, velocity_threshold, base_version, render_mode)
    return StackedCosts(EffortCost(env, budget), COST_TERMS)
