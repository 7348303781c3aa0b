"""Velocity tasks: cost = 1[v > threshold] with v hand-computed from the MuJoCo state."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from safe_envs_testing import VELOCITY_IDS, actions, steps_for

from safe_envs.velocity import make_velocity_task

THRESHOLDS = {
    "SafetyHopperVelocity-v1": 0.7402,
    "SafetyHalfCheetahVelocity-v1": 3.2096,
    "SafetyWalker2dVelocity-v1": 2.3415,
    "SafetySwimmerVelocity-v1": 0.2282,
    "SafetyAntVelocity-v1": 2.6222,
    "SafetyHumanoidVelocity-v1": 1.4149,
}
BASES = {
    "SafetyHopperVelocity-v1": ("Hopper-v4", 11),
    "SafetyHalfCheetahVelocity-v1": ("HalfCheetah-v4", 17),
    "SafetyWalker2dVelocity-v1": ("Walker2d-v4", 17),
    "SafetySwimmerVelocity-v1": ("Swimmer-v4", 8),
    "SafetyAntVelocity-v1": ("Ant-v4", 27),
    "SafetyHumanoidVelocity-v1": ("Humanoid-v4", 376),
}


def measured_position(env_id: str, env: gymnasium.Env) -> np.ndarray:
    """The position whose change over a step defines v (hand computation from the state)."""
    data, model = env.unwrapped.data, env.unwrapped.model
    if env_id == "SafetyAntVelocity-v1":
        return data.body("torso").xpos[:2].copy()
    if env_id == "SafetyHumanoidVelocity-v1":
        mass = model.body_mass[:, None]
        return (mass * data.xipos).sum(0)[:2] / mass.sum()
    return data.qpos[:1].copy()


def hand_velocity(env_id: str, before: np.ndarray, after: np.ndarray, dt: float) -> float:
    delta = (after - before) / dt
    return float(np.hypot(*delta)) if delta.size == 2 else float(delta[0])


@pytest.mark.parametrize("env_id", VELOCITY_IDS)
def test_cost_matches_hand_computed_velocity(env_id, make):
    env = make(env_id)
    env.reset(seed=3)
    dt = env.unwrapped.dt
    for action in actions(env, steps_for(env_id), seed=1):
        before = measured_position(env_id, env)
        *_, terminated, truncated, info = env.step(action)
        v = hand_velocity(env_id, before, measured_position(env_id, env), dt)
        assert info["velocity"] == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert info["cost"] == info["cost_velocity"] == (1.0 if v > THRESHOLDS[env_id] else 0.0)
        assert isinstance(info["cost"], float)
        if terminated:
            break


def set_velocity(env: gymnasium.Env, vx: float, vy: float = 0.0) -> None:
    base = env.unwrapped
    qvel = base.init_qvel.copy()
    qvel[0] = vx
    if vy and qvel.size > 1:
        qvel[1] = vy
    base.set_state(base.init_qpos.copy(), qvel)


def velocity_after_push(env_id: str, threshold: float | None = None) -> dict:
    """info of one zero-action step after setting a forward velocity of 1 from the seeded reset."""
    kwargs = {} if threshold is None else {"velocity_threshold": threshold}
    env = gymnasium.make(env_id, **kwargs)
    env.reset(seed=0)
    set_velocity(env, 1.0)
    info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))[4]
    env.close()
    return info


@pytest.mark.parametrize("env_id", VELOCITY_IDS)
def test_threshold_edge_is_strict(env_id):
    """v exactly at the threshold costs 0; a threshold just below v costs 1."""
    v = velocity_after_push(env_id)["velocity"]
    assert v > 0
    assert velocity_after_push(env_id, v)["cost"] == 0.0
    assert velocity_after_push(env_id, float(np.nextafter(v, -np.inf)))["cost"] == 1.0


@pytest.mark.parametrize(
    "env_id",
    [
        "SafetyHopperVelocity-v1",
        "SafetyHalfCheetahVelocity-v1",
        "SafetyWalker2dVelocity-v1",
        "SafetySwimmerVelocity-v1",
    ],
)
def test_running_backwards_never_costs_on_signed_x_tasks(env_id, make):
    env = make(env_id, velocity_threshold=0.0)
    env.reset(seed=0)
    set_velocity(env, -8.0)
    *_, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert info["velocity"] < -1.0
    assert info["cost"] == 0.0


@pytest.mark.parametrize("env_id", ["SafetyAntVelocity-v1", "SafetyHumanoidVelocity-v1"])
def test_planar_speed_costs_in_any_direction(env_id, make):
    env = make(env_id)
    env.reset(seed=0)
    set_velocity(env, -4.0, -4.0)
    *_, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert info["velocity"] > THRESHOLDS[env_id]
    assert info["cost"] == 1.0


@pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning")
@pytest.mark.parametrize("env_id", VELOCITY_IDS)
def test_same_observation_reward_termination_as_base(env_id, make):
    base_id, obs_size = BASES[env_id]
    ours, base = make(env_id), make(base_id)
    obs_a, _ = ours.reset(seed=7)
    obs_b, _ = base.reset(seed=7)
    assert obs_a.shape == (obs_size,)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in actions(ours, steps_for(env_id), seed=4):
        a, b = ours.step(action), base.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        if a[2]:
            break


@pytest.mark.parametrize("env_id", ["SafetyHopperVelocity-v1", "SafetyAntVelocity-v1"])
def test_v5_base_is_available(env_id, make):
    env = make(env_id, base_version="v5")
    env.reset(seed=0)
    *_, info = env.step(env.action_space.sample())
    assert info["cost"] in (0.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"velocity_threshold": -0.1}, "velocity_threshold"),
        ({"velocity_threshold": float("nan")}, "velocity_threshold"),
        ({"velocity_threshold": "fast"}, "velocity_threshold"),
        ({"base_version": "v3"}, "base_version"),
    ],
)
def test_invalid_parameters_fail_at_construction(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gymnasium.make("SafetyHopperVelocity-v1", **kwargs)


def test_repr_shows_settings():
    env = make_velocity_task("Ant", velocity_threshold=1.5)
    assert "velocity_threshold=1.5" in repr(env) and "planar=True" in repr(env)
