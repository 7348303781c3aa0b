"""Velocity-constrained tasks (Safety-Gymnasium "v1" velocity tasks) on Gymnasium MuJoCo bases.

Per-step cost = 1.0 if v > threshold else 0.0 (strict), where v is the base's own velocity over
the step that produced the reward: the signed x velocity (Hopper, HalfCheetah, Walker2d,
Swimmer) or the planar speed sqrt(vx^2 + vy^2) (Ant: torso, Humanoid: centre of mass), read
from the base's ``info["x_velocity"]`` / ``info["y_velocity"]``. Observation, reward and
termination are the base's.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from safe_envs.bases import make_base
from safe_envs.validation import check_real

#: name -> (velocity threshold, measured as planar speed?)
VELOCITY_TASKS: dict[str, tuple[float, bool]] = {
    "Hopper": (0.7402, False),
    "HalfCheetah": (3.2096, False),
    "Walker2d": (2.3415, False),
    "Swimmer": (0.2282, False),
    "Ant": (2.6222, True),
    "Humanoid": (1.4149, True),
}


class VelocityCost(gymnasium.Wrapper):
    """Adds ``info["cost"] = info["cost_velocity"] = 1[v > velocity_threshold]`` and
    ``info["velocity"] = v`` to a base env whose info carries ``x_velocity`` (and
    ``y_velocity`` when ``planar``)."""

    def __init__(self, env: gymnasium.Env, velocity_threshold: float, planar: bool) -> None:
        super().__init__(env)
        self.velocity_threshold = check_real("velocity_threshold", velocity_threshold, minimum=0.0)
        self.planar = bool(planar)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.planar:
            velocity = math.hypot(info["x_velocity"], info["y_velocity"])
        else:
            velocity = float(info["x_velocity"])
        cost = 1.0 if velocity > self.velocity_threshold else 0.0
        info["velocity"] = velocity
        info["cost_velocity"] = cost
        info["cost"] = cost
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        info["velocity"] = 0.0
        info["cost_velocity"] = 0.0
        info["cost"] = 0.0
        return obs, info

    def __repr__(self) -> str:
        return (
            f"VelocityCost({self.env!r}, velocity_threshold={self.velocity_threshold}, "
            f"planar={self.planar})"
        )


def make_velocity_task(
    base: str,
    velocity_threshold: float | None = None,
    base_version: str = "v4",
    render_mode: str | None = None,
) -> VelocityCost:
    """Entry point of the ``Safety<base>Velocity-v1`` ids.

    ``velocity_threshold`` defaults to the published threshold of ``base``; ``base_version``
    selects Gymnasium's ``v4`` (default, comparable with published tables) or ``v5`` model.
    """
    if base not in VELOCITY_TASKS:
        raise ValueError(f"base must be one of {sorted(VELOCITY_TASKS)}, got {base!r}.")
    default_threshold, planar = VELOCITY_TASKS[base]
    threshold = default_threshold if velocity_threshold is None else velocity_threshold
    threshold = check_real("velocity_threshold", threshold, minimum=0.0)
    env = make_base(base, base_version, render_mode=render_mode)
    return VelocityCost(env, threshold, planar)
