"""The registered tasks: one ``register_task`` line per task.

To add a task, put its environment in its own module of ``safe_envs`` and add one line here.
Cost limits marked ``cost_limit_source="safe_envs"`` are our defaults: half the episodic cost of
a uniformly random policy (1000 steps), to two significant figures (docs/tasks.md); the others
are the published ones. Tasks with K > 1 constraints take one limit per constraint
(``num_costs`` is then K); for the velocity-effort tasks the velocity limit is the published 25
and the effort limit ours, about 30% of a random policy's effort cost (docs/tasks.md).
"""

from __future__ import annotations

from safe_envs.registry import register_task

_VELOCITY = "safe_envs.velocity:make_velocity_task"
_TASKS = "safe_envs.mujoco_tasks"
_VELOCITY_EFFORT = "safe_envs.multi_cost:make_velocity_effort_task"
#: (velocity limit, effort limit) per 1000-step episode
_VELOCITY_EFFORT_LIMITS = (25.0, 200.0)

# Velocity-constrained tasks (Safety-Gymnasium v1 definitions), cost limit 25.
register_task("SafetyHopperVelocity-v1", _VELOCITY, 25.0, base="Hopper")
register_task("SafetyHalfCheetahVelocity-v1", _VELOCITY, 25.0, base="HalfCheetah")
register_task("SafetyWalker2dVelocity-v1", _VELOCITY, 25.0, base="Walker2d")
register_task("SafetySwimmerVelocity-v1", _VELOCITY, 25.0, base="Swimmer")
register_task("SafetyAntVelocity-v1", _VELOCITY, 25.0, base="Ant")
register_task("SafetyHumanoidVelocity-v1", _VELOCITY, 25.0, base="Humanoid")

# Two constraints (K = 2): the velocity cost above plus an effort cost (safe_envs/multi_cost.py).
for _base in ("Hopper", "Walker2d", "HalfCheetah", "Ant"):
    register_task(
        f"Safety{_base}VelocityEffort-v1",
        _VELOCITY_EFFORT,
        _VELOCITY_EFFORT_LIMITS,
        cost_limit_source="safe_envs",
        base=_base,
    )

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
register_task(
    "SafetyPointVelocityEffort-v0",
    "safe_envs.toy:PointVelocityEffortEnv",
    (10.0, 10.0),
    cost_limit_source="safe_envs",
    max_episode_steps=100,
)
