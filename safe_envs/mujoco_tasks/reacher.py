"""SafetyReacher-v4: reward = -|fingertip - target|, cost = w |a|^2."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


class SafetyReacher(SafetyMujocoTask):
    """Reacher-v4: reward = -|fingertip - target| (Reacher-v4's ``reward_dist``, measured at the
    start of the step); cost_ctrl = ctrl_cost_weight (1) * |a|^2."""

    cost_terms = ("cost_ctrl",)

    def __init__(self, ctrl_cost_weight: float = 1.0, render_mode: str | None = None) -> None:
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        super().__init__(make_base("Reacher", "v4", render_mode=render_mode))

    def settings(self) -> dict[str, float]:
        return {"ctrl_cost_weight": self.ctrl_cost_weight}

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        return float(info["reward_dist"]), {
            "cost_ctrl": self.ctrl_cost_weight * squared_norm(action)
        }
