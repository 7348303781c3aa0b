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
