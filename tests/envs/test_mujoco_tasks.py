"""Safety-MuJoCo tasks: rewards and every cost term vs hand computations from state and action."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from safe_envs_testing import MUJOCO_TASK_IDS, actions, steps_for

import safe_envs


def reset_to(env: gymnasium.Env, qpos_changes: dict[int, float], seed: int = 0) -> None:
    """Reset, then set the given qpos entries (velocities stay at the reset values)."""
    env.reset(seed=seed)
    base = env.unwrapped
    qpos = base.data.qpos.copy()
    for index, value in qpos_changes.items():
        qpos[index] = value
    base.set_state(qpos, base.data.qvel.copy())


def sq(x: np.ndarray) -> float:
    return float(np.sum(np.square(np.asarray(x, dtype=np.float64))))


@pytest.mark.parametrize(
    ("z", "angle", "health"), [(1.25, 0.0, 2.0), (0.5, 0.0, 1.0), (2.2, 0.0, 1.0), (1.25, 1.5, 1.0)]
)
def test_walker2d_reward_and_cost(make, z, angle, health):
    env = make("SafetyWalker2d-v4")
    reset_to(env, {1: z, 2: angle})
    data, dt = env.unwrapped.data, env.unwrapped.dt
    action = actions(env, 1, seed=5)[0]
    x_before = data.qpos[0]
    _, reward, terminated, _, info = env.step(action)
    z_after, angle_after = data.qpos[1:3]
    hand_health = float(0.8 < z_after < 2.0) + float(-1.0 < angle_after < 1.0)
    assert hand_health == health
    assert reward == pytest.approx((data.qpos[0] - x_before) / dt + hand_health, rel=1e-9)
    assert info["cost"] == info["cost_ctrl"] == pytest.approx(math.sqrt(1e-3 * sq(action)))
    assert not terminated


@pytest.mark.parametrize(("z", "unhealthy"), [(1.25, 0.0), (0.5, 1.0)])
def test_hopper_reward_and_costs(make, z, unhealthy):
    env = make("SafetyHopper-v4")
    reset_to(env, {1: z})
    data, dt = env.unwrapped.data, env.unwrapped.dt
    action = actions(env, 1, seed=6)[0]
    x_before = data.qpos[0]
    _, reward, terminated, _, info = env.step(action)
    state = np.concatenate([data.qpos, data.qvel])[2:]
    healthy = np.all(np.abs(state) < 100) and data.qpos[1] > 0.7 and abs(data.qpos[2]) < 0.2
    assert (0.0 if healthy else 1.0) == unhealthy
    assert reward == pytest.approx((data.qpos[0] - x_before) / dt, rel=1e-9)
    assert info["cost_ctrl"] == pytest.approx(0.5 * sq(action))
    assert info["cost_unhealthy"] == unhealthy
    assert info["cost"] == pytest.approx(0.5 * sq(action) + unhealthy)
    assert not terminated


def test_hopper_unhealthy_by_angle_and_no_early_termination(make):
    env = make("SafetyHopper-v4", unhealthy_cost=2.5)
    reset_to(env, {2: 0.5})
    zero = np.zeros(3, dtype=np.float32)
    for _ in range(50):
        _, _, terminated, truncated, info = env.step(zero)
        assert not terminated and not truncated
    assert info["cost_unhealthy"] == 2.5 and info["cost_ctrl"] == 0.0


def test_ant_reward_and_cost(make):
    env = make("SafetyAnt-v4")
    env.reset(seed=1)
    data, dt = env.unwrapped.data, env.unwrapped.dt
    action = actions(env, 1, seed=7)[0]
    x_before = data.body("torso").xpos[0]
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx((data.body("torso").xpos[0] - x_before) / dt, rel=1e-9)
    assert info["cost"] == info["cost_ctrl"] == pytest.approx(0.5 * sq(action))


def test_ant_upside_down_does_not_terminate(make):
    env = make("SafetyAnt-v4")
    reset_to(env, {2: 0.1})
    for _ in range(10):
        assert not env.step(np.zeros(8, dtype=np.float32))[2]


@pytest.mark.parametrize("goal", [0.3, -1.0, 2.0])
def test_half_cheetah_goal_velocity_and_height_cost(make, goal):
    env = make("SafeHalfCheetah-v4", goal_velocity=goal, height_cost_weight=2.0)
    reset_to(env, {1: 0.2})
    data, dt = env.unwrapped.data, env.unwrapped.dt
    action = actions(env, 1, seed=8)[0]
    x_before = data.qpos[0]
    obs, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(-abs((data.qpos[0] - x_before) / dt - goal), rel=1e-9)
    assert obs[0] == data.qpos[1]
    assert info["cost"] == info["cost_height"] == pytest.approx(2.0 * abs(data.qpos[1]))
    assert info["cost"] > 0


def test_half_cheetah_default_goal_is_0_3(make):
    env = make("SafeHalfCheetah-v4")
    assert env.get_wrapper_attr("goal_velocity") == 0.3


def mass_center_x(env: gymnasium.Env) -> float:
    model, data = env.unwrapped.model, env.unwrapped.data
    return float((model.body_mass * data.xipos[:, 0]).sum() / model.body_mass.sum())


@pytest.mark.parametrize(("z", "unhealthy"), [(1.4, 0.0), (0.8, 1.0), (2.2, 1.0)])
def test_humanoid_reward_and_costs(make, z, unhealthy):
    env = make("SafetyHumanoid-v4")
    reset_to(env, {2: z})
    data, dt = env.unwrapped.data, env.unwrapped.dt
    action = actions(env, 1, seed=9)[0]
    x_before = mass_center_x(env)
    _, reward, terminated, _, info = env.step(action)
    assert (0.0 if 1.0 < data.qpos[2] < 2.0 else 1.0) == unhealthy
    assert reward == pytest.approx(1.25 * (mass_center_x(env) - x_before) / dt, rel=1e-9)
    np.testing.assert_allclose(data.ctrl, action, rtol=1e-6)
    assert info["cost_ctrl"] == pytest.approx(0.1 * sq(data.ctrl))
    assert info["cost_unhealthy"] == unhealthy
    assert info["cost"] == pytest.approx(0.1 * sq(data.ctrl) + unhealthy)
    assert not terminated


def test_humanoid_standup_reward_and_costs(make):
    env = make("SafetyHumanoidStandup-v4")
    env.reset(seed=2)
    data, model = env.unwrapped.data, env.unwrapped.model
    action = actions(env, 1, seed=10)[0]
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(data.qpos[2] / model.opt.timestep, rel=1e-9)
    assert info["cost_impact"] == pytest.approx(min(0.5e-6 * sq(data.cfrc_ext), 10.0))
    assert info["cost_ctrl"] == pytest.approx(0.1 * sq(data.ctrl))
    assert info["cost"] == pytest.approx(info["cost_impact"] + info["cost_ctrl"])


def test_humanoid_standup_impact_cost_is_capped(make):
    env = make("SafetyHumanoidStandup-v4", impact_cost_weight=1.0, impact_cost_max=3.0)
    env.reset(seed=2)
    *_, info = env.step(actions(env, 1, seed=10)[0])
    assert sq(env.unwrapped.data.cfrc_ext) > 3.0
    assert info["cost_impact"] == 3.0


def test_reacher_reward_and_cost(make):
    env = make("SafetyReacher-v4")
    env.reset(seed=3)
    base = env.unwrapped
    action = actions(env, 1, seed=11)[0]
    distance = np.linalg.norm(base.get_body_com("fingertip") - base.get_body_com("target"))
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(-distance, rel=1e-9)
    assert info["cost"] == info["cost_ctrl"] == pytest.approx(sq(action))


def test_pusher_reward_and_cost(make):
    env = make("SafetyPusher-v5")
    env.reset(seed=4)
    base = env.unwrapped
    action = actions(env, 1, seed=12)[0]
    _, reward, _, _, info = env.step(action)
    obj = base.get_body_com("object")
    dist = np.linalg.norm(obj - base.get_body_com("goal"))
    near = np.linalg.norm(obj - base.get_body_com("tips_arm"))
    assert reward == pytest.approx(-dist - 0.5 * near, rel=1e-9)
    assert info["cost"] == info["cost_ctrl"] == pytest.approx(0.1 * sq(action))


BASES = {
    "SafetyWalker2d-v4": "Walker2d-v4",
    "SafetyHopper-v4": "Hopper-v4",
    "SafetyAnt-v4": "Ant-v4",
    "SafeHalfCheetah-v4": "HalfCheetah-v4",
    "SafetyHumanoid-v4": "Humanoid-v4",
    "SafetyHumanoidStandup-v4": "HumanoidStandup-v4",
    "SafetyReacher-v4": "Reacher-v4",
    "SafetyPusher-v5": "Pusher-v5",
}


@pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning")
@pytest.mark.parametrize("env_id", MUJOCO_TASK_IDS)
def test_observations_equal_base_and_costs_nonnegative(env_id, make):
    ours, base = make(env_id), make(BASES[env_id])
    np.testing.assert_array_equal(ours.reset(seed=5)[0], base.reset(seed=5)[0])
    for action in actions(ours, steps_for(env_id), seed=13):
        obs, reward, terminated, _, info = ours.step(action)
        base_obs, base_reward, base_terminated, _, _ = base.step(action)
        np.testing.assert_array_equal(obs, base_obs)
        assert info["base_reward"] == base_reward
        assert isinstance(info["cost"], float) and info["cost"] >= 0
        terms = [value for key, value in info.items() if key.startswith("cost_")]
        assert terms and info["cost"] == pytest.approx(sum(terms))
        assert not terminated
        if base_terminated:
            break


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("SafetyWalker2d-v4", {"ctrl_cost_weight": -1e-3}, "ctrl_cost_weight"),
        ("SafetyHopper-v4", {"unhealthy_cost": -1.0}, "unhealthy_cost"),
        ("SafetyAnt-v4", {"ctrl_cost_weight": float("inf")}, "ctrl_cost_weight"),
        ("SafeHalfCheetah-v4", {"goal_velocity": float("nan")}, "goal_velocity"),
        ("SafeHalfCheetah-v4", {"height_cost_weight": -2}, "height_cost_weight"),
        ("SafetyHumanoid-v4", {"forward_reward_weight": "x"}, "forward_reward_weight"),
        ("SafetyHumanoidStandup-v4", {"impact_cost_max": -1}, "impact_cost_max"),
        ("SafetyReacher-v4", {"ctrl_cost_weight": True}, "ctrl_cost_weight"),
        ("SafetyPusher-v5", {"ctrl_cost_weight": -0.1}, "ctrl_cost_weight"),
    ],
)
def test_invalid_parameters_fail_at_construction(env_id, kwargs, name):
    with pytest.raises(ValueError, match=name):
        gymnasium.make(env_id, **kwargs)


def test_repr_shows_settings():
    from safe_envs.mujoco_tasks.half_cheetah import SafeHalfCheetah

    env = SafeHalfCheetah(goal_velocity=0.5)
    assert repr(env) == "SafeHalfCheetah(goal_velocity=0.5, height_cost_weight=1.0)"
    env.close()


@pytest.mark.parametrize("env_id", safe_envs.available_ids())
def test_seeding_is_deterministic_including_costs(env_id, make):
    first, second = make(env_id), make(env_id)
    steps = steps_for(env_id)
    trajectories = []
    for env in (first, second):
        obs, _ = env.reset(seed=11)
        rows = [obs.copy()]
        for action in actions(env, steps, seed=14):
            obs, reward, terminated, truncated, info = env.step(action)
            rows.append(np.concatenate([obs, [reward, info["cost"], terminated, truncated]]))
            if terminated or truncated:
                break
        trajectories.append(rows)
    assert len(trajectories[0]) == len(trajectories[1])
    for a, b in zip(*trajectories, strict=True):
        np.testing.assert_array_equal(a, b)
