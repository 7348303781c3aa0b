"""SafetyPointVelocity: a cheap constrained task for tests and tutorials.

A 1-D point mass whose velocity follows the action with first-order lag::

    v_{t+1} = damping * v_t + (1 - damping) * clip(a_t, -1, 1)

Reward is the forward velocity ``v_{t+1}``; the per-step cost is ``1.0`` when
``v_{t+1} > speed_threshold`` (strict), so chasing reward (``a = 1``, ``v -> 1``) pays a cost on
nearly every step, while a policy that holds its speed below the threshold keeps most of the
reward and little cost. Observation: ``[v]`` (float32). Episodes never terminate; the registered
id truncates them at 100 steps. The cost is reported in ``info["cost"]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from safe_envs.validation import check_real


class PointVelocityEnv(gymnasium.Env):
    """1-D point mass with a speed limit (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self, speed_threshold: float = 0.5, damping: float = 0.8, initial_noise: float = 0.1
    ) -> None:
        self.speed_threshold = check_real("speed_threshold", speed_threshold, minimum=0.0)
        self.damping = check_real("damping", damping, minimum=0.0)
        if self.damping >= 1.0:
            raise ValueError(f"damping must be < 1 so actions move the mass, got {damping!r}.")
        self.initial_noise = check_real("initial_noise", initial_noise, minimum=0.0)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._velocity = 0.0

    def __repr__(self) -> str:
        return (
            f"PointVelocityEnv(speed_threshold={self.speed_threshold}, damping={self.damping}, "
            f"initial_noise={self.initial_noise})"
        )

    def _obs(self) -> np.ndarray:
        return np.array([self._velocity], dtype=np.float32)

    def get_state(self) -> float:
        """The running episode's state (its velocity; see :mod:`gradmanip.rl.episode_state`)."""
        return self._velocity

    def set_state(self, state: float) -> None:
        self._velocity = float(state)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        noise = self.initial_noise
        self._velocity = float(self.np_random.uniform(-noise, noise)) if noise > 0 else 0.0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        force = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self._velocity = self.damping * self._velocity + (1.0 - self.damping) * force
        cost = 1.0 if self._velocity > self.speed_threshold else 0.0
        info = {"cost": cost, "velocity": self._velocity}
        return self._obs(), float(self._velocity), False, False, info


class PointVelocityEffortEnv(PointVelocityEnv):
    """The point mass with two constraints (K = 2): its speed limit and an effort budget.

    Per step, with ``a`` the clipped action::

        cost_velocity = 1[v_{t+1} > speed_threshold]     (as PointVelocityEnv)
        cost_effort   = 1[a^2 > effort_budget]           (strict)

    ``info["costs"]`` = ``[cost_velocity, cost_effort]``, ``info["cost"]`` = their sum. The
    defaults make the two bind in different phases of learning: a wide initial action noise pays
    effort at once while the mass is still slow, and the speed cost comes later, when the policy
    has learnt to push forward (the speed limit, 0.3, is below the effort budget's action size,
    0.6). A policy pushing steadily just under the speed limit with a small noise meets both.
    """

    num_costs = 2

    def __init__(
        self,
        speed_threshold: float = 0.3,
        damping: float = 0.8,
        initial_noise: float = 0.1,
        effort_budget: float = 0.36,
    ) -> None:
        super().__init__(speed_threshold, damping, initial_noise)
        self.effort_budget = check_real("effort_budget", effort_budget, minimum=0.0)

    def __repr__(self) -> str:
        return (
            super().__repr__()[:-1].replace("PointVelocityEnv", "PointVelocityEffortEnv", 1)
            + f", effort_budget={self.effort_budget})"
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return obs, info | _stacked(0.0, 0.0, 0.0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        force = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        effort = force * force
        cost_effort = 1.0 if effort > self.effort_budget else 0.0
        return (
            obs,
            reward,
            terminated,
            truncated,
            info | _stacked(info["cost"], cost_effort, effort),
        )


def _stacked(cost_velocity: float, cost_effort: float, effort: float) -> dict[str, Any]:
    return {
        "cost_velocity": cost_velocity,
        "cost_effort": cost_effort,
        "effort": effort,
        "costs": np.array([cost_velocity, cost_effort], dtype=np.float64),
        "cost": cost_velocity + cost_effort,
    }
