"""SafetyWalker2d-v4: reward = x velocity + health value, cost = sqrt(w |a|^2)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


class SafetyWalker2d(SafetyMujocoTask):
    """Walker2d-v4 without early termination.

    reward = v_x + 1[0.8 < z < 2] + 1[-1 < torso angle < 1]; cost_ctrl = sqrt(ctrl_cost_weight
    * |a|^2) (default weight 1e-3).
    """

    cost_terms = ("cost_ctrl",)

    def __init__(self, ctrl_cost_weight: float = 1e-3, render_mode: str | None = None) -> None:
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        super().__init__(
            make_base("Walker2d", "v4", terminate_when_unhealthy=False, render_mode=render_mode)
        )

    def settings(self) -> dict[str, float]:
        return {"ctrl_cost_weight": self.ctrl_cost_weight}

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        z, angle = self.data.qpos[1:3]
        health = float(0.8 < z < 2.0) + float(-1.0 < angle < 1.0)
        info["reward_health"] = health
        reward = float(info["x_velocity"]) + health
        return reward, {"cost_ctrl": math.sqrt(self.ctrl_cost_weight * squared_norm(action))}
