"""SafetyPointVelocityEffort-v0: the toy point mass with K = 2 constraints (speed, effort)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import safe_envs
from safe_envs.toy import PointVelocityEffortEnv

TASK = "SafetyPointVelocityEffort-v0"


def test_costs_follow_the_formulas_by_hand():
    env = PointVelocityEffortEnv(speed_threshold=0.3, damping=0.5, initial_noise=0.0)
    _, info = env.reset(seed=0)
    assert list(info["costs"]) == [0.0, 0.0] and info["cost"] == 0.0
    v = 0.0
    for action in (0.6, 0.6, 2.0, -0.7, 0.0, 0.59):
        _, reward, *_, info = env.step(np.array([action], dtype=np.float32))
        force = float(np.clip(np.float32(action), -1.0, 1.0))
        v = 0.5 * v + 0.5 * force
        expected = [float(v > 0.3), float(force * force > 0.36)]
        assert reward == pytest.approx(v)
        assert list(info["costs"]) == expected
        assert [info["cost_velocity"], info["cost_effort"]] == expected
        assert info["cost"] == sum(expected) and info["effort"] == pytest.approx(force * force)


def test_effort_edge_is_strict():
    env = PointVelocityEffortEnv(effort_budget=0.25, initial_noise=0.0)
    env.reset(seed=0)
    assert env.step(np.array([0.5]))[-1]["cost_effort"] == 0.0  # 0.25 is not above 0.25
    assert env.step(np.array([-0.51]))[-1]["cost_effort"] == 1.0


def test_registration_limits_and_settings():
    assert safe_envs.num_costs(TASK) == 2
    assert safe_envs.default_cost_limit(TASK) == (10.0, 10.0)
    assert gymnasium.spec(TASK).max_episode_steps == 100
    env = PointVelocityEffortEnv()
    assert repr(env) == (
        "PointVelocityEffortEnv(speed_threshold=0.3, damping=0.8, initial_noise=0.1, "
        "effort_budget=0.36)"
    )
    with pytest.raises(ValueError, match="effort_budget"):
        PointVelocityEffortEnv(effort_budget=-1.0)


def test_torchrl_costs_have_two_columns_matching_the_info():
    env = safe_envs.make_env(TASK, seed=3)
    torch.manual_seed(0)
    rollout = env.rollout(100)
    assert rollout["next", "cost"].shape == (100, 2)
    assert rollout["next", "cost"].dtype == torch.float32
    gym_env = gymnasium.make(TASK)
    gym_env.reset(seed=3)
    costs = [gym_env.step(a.numpy())[-1]["costs"] for a in rollout["action"]]
    np.testing.assert_array_equal(rollout["next", "cost"].numpy(), np.array(costs, np.float32))
