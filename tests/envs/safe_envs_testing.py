"""Task lists and helpers shared by the safe_envs tests."""

from __future__ import annotations

import gymnasium
import numpy as np

VELOCITY_IDS = [
    "SafetyHopperVelocity-v1",
    "SafetyHalfCheetahVelocity-v1",
    "SafetyWalker2dVelocity-v1",
    "SafetySwimmerVelocity-v1",
    "SafetyAntVelocity-v1",
    "SafetyHumanoidVelocity-v1",
]
MUJOCO_TASK_IDS = [
    "SafetyWalker2d-v4",
    "SafetyHopper-v4",
    "SafetyAnt-v4",
    "SafeHalfCheetah-v4",
    "SafetyHumanoid-v4",
    "SafetyHumanoidStandup-v4",
    "SafetyReacher-v4",
    "SafetyPusher-v5",
]


def steps_for(env_id: str) -> int:
    """Few steps for the slow humanoids, more for the rest."""
    return 5 if "Humanoid" in env_id else 25


def actions(env: gymnasium.Env, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` reproducible uniform actions of ``env``'s action space."""
    rng = np.random.default_rng(seed)
    space = env.action_space
    return [rng.uniform(space.low, space.high).astype(space.dtype) for _ in range(n)]
