"""SafetyHopper-v4: reward = x velocity, cost = w |a|^2 + unhealthy cost."""

from __future__ import annotations

from typing import Any

import numpy as np

from safe_envs.bases import make_base
from safe_envs.mujoco_tasks.task import SafetyMujocoTask, squared_norm
from safe_envs.validation import check_real


def hopper_is_healthy(qpos: np.ndarray, qvel: np.ndarray) -> bool:
    """Hopper-v4's health rule: all |state[2:]| < 100, z > 0.7, |torso angle| < 0.2."""
    z, angle = qpos[1:3]
    state = np.concatenate([qpos, qvel])[2:]
    return bool(np.all(np.abs(state) < 100.0) and z > 0.7 and abs(angle) < 0.2)


class SafetyHopper(SafetyMujocoTask):
    """Hopper-v4 without early termination.

    reward = v_x; cost_ctrl = ctrl_cost_weight |a|^2 (0.5), cost_unhealthy = unhealthy_cost (1)
    when the hopper is unhealthy.
    """

    cost_terms = ("cost_ctrl", "cost_unhealthy")

    def __init__(
        self,
        ctrl_cost_weight: float = 0.5,
        unhealthy_cost: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        self.ctrl_cost_weight = check_real("ctrl_cost_weight", ctrl_cost_weight, minimum=0.0)
        self.unhealthy_cost = check_real("unhealthy_cost", unhealthy_cost, minimum=0.0)
        super().__init__(
            make_base("Hopper", "v4", terminate_when_unhealthy=False, render_mode=render_mode)
        )

    def settings(self) -> dict[str, float]:
        return {"ctrl_cost_weight": self.ctrl_cost_weight, "unhealthy_cost": self.unhealthy_cost}

    def reward_and_costs(
        self, obs: np.ndarray, info: dict[str, Any], action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        healthy = hopper_is_healthy(self.data.qpos, self.data.qvel)
        return float(info["x_velocity"]), {
            "cost_ctrl": self.ctrl_cost_weight * squared_norm(action),
            "cost_unhealthy": 0.0 if healthy else self.unhealthy_cost,
        }
