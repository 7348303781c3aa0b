"""SafetyHumanoid-v4: reward = 1.25 v_x of the centre of mass, cost = w |ctrl|^2 + unhealthy."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


class SafetyHumanoid(SafetyMujocoTask):
    """Humanoid-v4 without early termination.

    reward = forward_reward_weight (1.25) * v_x of the centre of mass; cost_ctrl =
    ctrl_cost_weight (0.1) * |ctrl|^2; cost_unhealthy = unhealthy_cost (1) when the torso height
    z is not in (1.0, 2.0).
    """

    cost_terms = ("cost_ctrl", "cost_unhealthy")

    def __init__(
        self,
        forward_reward_weight: float = 1.25,
        ctrl_cost_weight: float = 0.1,
        unhealthy_cost: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        self.forward_reward_weight = check_real(
            "forward_reward_weight", forward_reward_weight, minimum=0.0
        )
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        self.unhealthy_cost = check_real("unhealthy_cost", unhealthy_cost, minimum=0.0)
        super().__init__(
            make_base("Humanoid", "v4", terminate_when_unhealthy=False, render_mode=render_mode)
        )

    def settings(self) -> dict[str, float]:
        return {
            "forward_reward_weight": self.forward_reward_weight,
            "ctrl_cost_weight": self.ctrl_cost_weight,
            "unhealthy_cost": self.unhealthy_cost,
        }

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        z = float(self.data.qpos[2])
        return self.forward_reward_weight * float(info["x_velocity"]), {
            "cost_ctrl": self.ctrl_cost_weight * squared_norm(self.data.ctrl),
            "cost_unhealthy": 0.0 if 1.0 < z < 2.0 else self.unhealthy_cost,
        }
