"""SafetyHumanoidStandup-v4: reward = z / timestep, cost = capped impact + control effort."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


class SafetyHumanoidStandup(SafetyMujocoTask):
    """HumanoidStandup-v4.

    reward = z / timestep; cost_impact = min(impact_cost_weight (0.5e-6) * |cfrc_ext|^2,
    impact_cost_max (10)); cost_ctrl = ctrl_cost_weight (0.1) * |ctrl|^2.
    """

    cost_terms = ("cost_impact", "cost_ctrl")

    def __init__(
        self,
        impact_cost_weight: float = 0.5e-6,
        impact_cost_max: float = 10.0,
        ctrl_cost_weight: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        self.impact_cost_weight = check_real("impact_cost_weight", impact_cost_weight, minimum=0.0)
        self.impact_cost_max = check_real("impact_cost_max", impact_cost_max, minimum=0.0)
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        super().__init__(make_base("HumanoidStandup", "v4", render_mode=render_mode))

    def settings(self) -> dict[str, float]:
        return {
            "impact_cost_weight": self.impact_cost_weight,
            "impact_cost_max": self.impact_cost_max,
            "ctrl_cost_weight": self.ctrl_cost_weight,
        }

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        reward = float(self.data.qpos[2]) / float(self.model.opt.timestep)
        impact = self.impact_cost_weight * squared_norm(self.data.cfrc_ext)
        return reward, {
            "cost_impact": min(impact, self.impact_cost_max),
            "cost_ctrl": self.ctrl_cost_weight * squared_norm(self.data.ctrl),
        }
