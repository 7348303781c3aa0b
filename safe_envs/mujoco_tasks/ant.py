"""SafetyAnt-v4: reward = torso x velocity, cost = w |a|^2."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


class SafetyAnt(SafetyMujocoTask):
    """Ant-v4 without early termination: reward = v_x (torso); cost_ctrl = ctrl_cost_weight
    |a|^2 (0.5)."""

    cost_terms = ("cost_ctrl",)

    def __init__(self, ctrl_cost_weight: float = 0.5, render_mode: str | None = None) -> None:
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        super().__init__(
            make_base("Ant", "v4", terminate_when_unhealthy=False, render_mode=render_mode)
        )

    def settings(self) -> dict[str, float]:
        return {"ctrl_cost_weight": self.ctrl_cost_weight}

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        return float(info["x_velocity"]), {
            "cost_ctrl": self.ctrl_cost_weight * squared_norm(action)
        }
