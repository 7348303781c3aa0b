"""SafeHalfCheetah-v4: track a goal velocity, cost = root height deviation."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask
from safe_envs.validation import check_real


class SafeHalfCheetah(SafetyMujocoTask):
    """HalfCheetah-v4 with a goal velocity.

    reward = -|v_x - goal_velocity| (goal 0.3); cost_height = height_cost_weight * |obs[0]|,
    obs[0] being the root's vertical displacement (weight 1).
    """

    cost_terms = ("cost_height",)

    def __init__(
        self,
        goal_velocity: float = 0.3,
        height_cost_weight: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        self.goal_velocity = check_real("goal_velocity", goal_velocity)
        self.height_cost_weight = check_real("height_cost_weight", height_cost_weight, minimum=0.0)
        super().__init__(make_base("HalfCheetah", "v4", render_mode=render_mode))

    def settings(self) -> dict[str, float]:
        return {"goal_velocity": self.goal_velocity, "height_cost_weight": self.height_cost_weight}

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        reward = -abs(float(info["x_velocity"]) - self.goal_velocity)
        return reward, {"cost_height": self.height_cost_weight * abs(float(obs[0]))}
