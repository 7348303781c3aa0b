"""The registered tasks: one ``register_task`` line per task.

To add a task, put its environment in its own module of ``safe_envs`` and add one line here.
Cost limits marked ``cost_limit_source="safe_envs"`` are our defaults: half the episodic cost of
a uniformly random policy (1000 steps), to two significant figures (docs/tasks.md); the others
are the published ones.
"""

from __future__ import annotations

from safe_envs.registry import register_task

_VELOCITY = "safe_envs.velocity:make_velocity_task"
_TASKS = "safe_envs.mujoco_tasks"

# Velocity-constrained tasks (Safety-Gymnasium v1 definitions), cost limit 25.
register_task("SafetyHopperVelocity-v1", _VELOCITY, 25.0, base="Hopper")
register_task("SafetyHalfCheetahVelocity-v1", _VELOCITY, 25.0, base="HalfCheetah")
register_task("SafetyWalker2dVelocity-v1", _VELOCITY, 25.0, base="Walker2d")
register_task("SafetySwimmerVelocity-v1", _VELOCITY, 25.0, base="Swimmer")
register_task("SafetyAntVelocity-v1", _VELOCITY, 25.0, base="Ant")
register_task("SafetyHumanoidVelocity-v1", _VELOCITY, 25.0, base="Humanoid")

# Safety-MuJoCo tasks (the benchmark introduced with PCRPO).
register_task("SafetyWalker2d-v4", f"{_TASKS}.walker2d:SafetyWalker2d", 40.0)
register_task(
    "SafetyHumanoidStandup-v4", f"{_TASKS}.humanoid_standup:SafetyHumanoidStandup", 1400.0
)
register_task("SafetyReacher-v4", f"{_TASKS}.reacher:SafetyReacher", 40.0)
register_task(
    "SafetyHopper-v4", f"{_TASKS}.hopper:SafetyHopper", 720.0, cost_limit_source="safe_envs"
)
register_task("SafetyAnt-v4", f"{_TASKS}.ant:SafetyAnt", 670.0, cost_limit_source="safe_envs")
register_task(
    "SafeHalfCheetah-v4",
    f"{_TASKS}.half_cheetah:SafeHalfCheetah",
    150.0,
    cost_limit_source="safe_envs",
)
register_task(
    "SafetyHumanoid-v4", f"{_TASKS}.humanoid:SafetyHumanoid", 530.0, cost_limit_source="safe_envs"
)
register_task(
    "SafetyPusher-v5", f"{_TASKS}.pusher:SafetyPusher", 470.0, cost_limit_source="safe_envs"
)
register_task(
    "SafetyPointVelocity-v0",
    "safe_envs.toy:PointVelocityEnv",
    10.0,
    cost_limit_source="safe_envs",
    max_episode_steps=100,
)
