"""Common shape of the Safety-MuJoCo tasks (the benchmark introduced with PCRPO).

A task keeps the base observation, replaces the reward, reports a non-negative cost built from
named terms (``info["cost"] = sum of info["cost_<term>"]``) and never terminates early: a fallen
robot keeps accruing its cost until the time limit (1000 steps by default).
"""

from __future__ import annotations

import abc
from typing import Any, SupportsFloat

import gymnasium
import numpy as np


class SafetyMujocoTask(gymnasium.Wrapper, abc.ABC):
    """Wraps an unwrapped Gymnasium MuJoCo env; subclasses define reward and cost terms."""

    #: info keys of the cost terms, e.g. ("cost_ctrl", "cost_unhealthy")
    cost_terms: tuple[str, ...] = ()

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.data = env.unwrapped.data
        self.model = env.unwrapped.model

    @abc.abstractmethod
    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """(reward, {cost term: value >= 0}) of the step that just ran (state is post-step)."""

    def settings(self) -> dict[str, float]:
        """The task's configurable parameters, shown by ``repr``."""
        return {}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, base_reward, _terminated, truncated, info = self.env.step(action)
        reward, costs = self.reward_and_costs(obs, info, np.asarray(action, dtype=np.float64))
        info["base_reward"] = float(base_reward)
        info.update(costs)
        info["cost"] = float(sum(costs.values()))
        return obs, float(reward), False, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        info.update(dict.fromkeys(self.cost_terms, 0.0))
        info["cost"] = 0.0
        return obs, info

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings().items())
        return f"{type(self).__name__}({settings})"


def squared_norm(vector: np.ndarray) -> float:
    """|vector|^2 as a Python float."""
    flat = np.ravel(vector)
    return float(flat @ flat)
