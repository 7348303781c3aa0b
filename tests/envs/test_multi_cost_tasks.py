"""Tasks with K = 2 constraints (velocity, effort): costs vs formulas, registry, TorchRL shapes."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from safe_envs_testing import actions
from torchrl.envs.utils import step_mdp

import safe_envs
from safe_envs.multi_cost import EFFORT_BUDGETS, make_velocity_effort_task
from safe_envs.velocity import VELOCITY_TASKS

ROOT = Path(__file__).resolve().parents[2]
BASES = ["Hopper", "Walker2d", "HalfCheetah", "Ant"]
IDS = [f"Safety{base}VelocityEffort-v1" for base in BASES]
LIMITS = (25.0, 200.0)


def wide_actions(env: gymnasium.Env, n: int, seed: int) -> list[np.ndarray]:
    """Uniform actions on 1.5x the action box: some components need clipping."""
    rng = np.random.default_rng(seed)
    space = env.action_space
    return [(1.5 * rng.uniform(space.low, space.high)).astype(space.dtype) for _ in range(n)]


def hand_costs(base: str, action: np.ndarray, info: dict, env: gymnasium.Env) -> list[float]:
    """[1[v > threshold], 1[|clip(a)|^2 > budget]] from the base's velocities and the action."""
    threshold, planar = VELOCITY_TASKS[base]
    vx = float(info["x_velocity"])
    v = math.hypot(vx, float(info["y_velocity"])) if planar else vx
    space = env.action_space
    applied = np.clip(action.astype(np.float64), space.low, space.high)
    effort = float(np.sum(applied**2))
    return [float(v > threshold), float(effort > EFFORT_BUDGETS[base])]


@pytest.mark.parametrize("base", BASES)
def test_costs_match_formulas_on_random_rollouts(base, make):
    env = make(f"Safety{base}VelocityEffort-v1")
    _, info = env.reset(seed=2)
    assert list(info["costs"]) == [0.0, 0.0] and info["cost"] == 0.0
    seen = np.zeros(2)
    for action in wide_actions(env, 40, seed=3):
        *_, terminated, truncated, info = env.step(action)
        expected = hand_costs(base, action, info, env)
        assert np.asarray(info["costs"]).shape == (2,)
        assert list(info["costs"]) == expected
        assert [info["cost_velocity"], info["cost_effort"]] == expected
        assert isinstance(info["cost"], float) and info["cost"] == sum(info["costs"])
        seen += expected
        if terminated or truncated:
            env.reset()
    assert seen[1] > 0  # the effort cost fires under random actions


@pytest.mark.parametrize("base", ["Hopper", "Ant"])
def test_velocity_cost_and_dynamics_are_the_velocity_tasks(base, make):
    ours, velocity = make(f"Safety{base}VelocityEffort-v1"), make(f"Safety{base}Velocity-v1")
    obs_a, _ = ours.reset(seed=5)
    obs_b, _ = velocity.reset(seed=5)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in actions(ours, 25, seed=6):
        a, b = ours.step(action), velocity.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        assert a[4]["costs"][0] == a[4]["cost_velocity"] == b[4]["cost"]
        if a[2]:
            break


def test_effort_budget_edge_is_strict(make):
    action = np.array([0.5, -2.0, 0.25], dtype=np.float32)  # clipped: 0.25 + 1 + 0.0625
    effort = 1.3125
    for budget, cost in [(effort, 0.0), (float(np.nextafter(effort, 0.0)), 1.0)]:
        env = make("SafetyHopperVelocityEffort-v1", effort_budget=budget)
        env.reset(seed=0)
        info = env.step(action)[4]
        assert info["effort"] == effort and info["cost_effort"] == cost


@pytest.mark.parametrize("env_id", IDS)
def test_default_budget_binds_for_random_and_large_actions(env_id, make):
    env = make(env_id)
    env.reset(seed=0)
    budget = EFFORT_BUDGETS[env_id.removeprefix("Safety").removesuffix("VelocityEffort-v1")]
    rng = np.random.default_rng(0)
    n = env.action_space.shape[0]
    random_effort = np.sum(rng.uniform(-1, 1, size=(2000, n)) ** 2, axis=1)
    assert np.mean(random_effort > budget) > 0.6  # each step costs with probability > 0.6
    assert n * 0.9**2 > budget  # actions of magnitude >= 0.9 always cost
    assert 1000 * np.mean(random_effort > budget) > 3 * LIMITS[1]


@pytest.mark.parametrize(
    "env_id", ["SafetyWalker2dVelocityEffort-v1", "SafetyAntVelocityEffort-v1"]
)
def test_seeding_is_deterministic(env_id, make):
    runs = []
    for env in (make(env_id), make(env_id)):
        obs, _ = env.reset(seed=9)
        rows = [obs.copy()]
        for action in actions(env, 20, seed=10):
            obs, reward, terminated, _, info = env.step(action)
            rows.append(np.concatenate([obs, [reward], info["costs"], [info["cost"]]]))
            if terminated:
                break
        runs.append(rows)
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"effort_budget": -0.5}, "effort_budget"),
        ({"effort_budget": float("nan")}, "effort_budget"),
        ({"effort_budget": "low"}, "effort_budget"),
        ({"effort_budget": True}, "effort_budget"),
        ({"velocity_threshold": -1.0}, "velocity_threshold"),
        ({"base_version": "v3"}, "base_version"),
    ],
)
def test_invalid_parameters_fail_at_construction(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gymnasium.make("SafetyHopperVelocityEffort-v1", **kwargs)
    with pytest.raises(ValueError, match=name):
        safe_envs.make_env("SafetyHopperVelocityEffort-v1", **kwargs)


def test_unsupported_base_and_repr():
    with pytest.raises(ValueError, match="base"):
        make_velocity_effort_task("Swimmer")
    env = make_velocity_effort_task("Ant", effort_budget=1.25)
    assert "effort_budget=1.25" in repr(env) and "cost_velocity', 'cost_effort" in repr(env)
    assert env.num_costs == 2
    env.close()


def test_registration_and_catalogue_listing():
    docs = (ROOT / "docs" / "tasks.md").read_text()
    for env_id in IDS:
        assert env_id in safe_envs.available_ids() and env_id in gymnasium.registry
        entry = safe_envs.task_entry(env_id)
        assert entry.num_costs == safe_envs.num_costs(env_id) == 2
        assert safe_envs.default_cost_limit(env_id) == LIMITS
        assert gymnasium.spec(env_id).max_episode_steps == 1000
        assert f"| {env_id} |" in docs
        cfg = OmegaConf.load(ROOT / "recipes" / "config" / "env" / f"{env_id}.yaml")
        assert cfg.id == env_id and list(cfg.cost_limit) == list(LIMITS)
        assert list(cfg.upper_slack) == [0.0, 0.0] and list(cfg.lower_slack) == [-9.0, -67.0]
    assert safe_envs.num_costs("SafetyHopperVelocity-v1") == 1
    assert safe_envs.default_cost_limit("SafetyHopperVelocity-v1") == 25.0


@pytest.mark.parametrize("limit", [[5.0], [1.0, -1.0], [1.0, float("inf")], (1.0, "x")])
def test_register_task_rejects_bad_limit_lists(limit):
    entry = "safe_envs.multi_cost:make_velocity_effort_task"
    with pytest.raises(ValueError, match="default_cost_limit"):
        safe_envs.register_task("SafetyNewEffort-v0", entry, limit, base="Hopper")
    assert "SafetyNewEffort-v0" not in safe_envs.available_ids()


@pytest.mark.parametrize("env_id", IDS)
def test_make_env_costs_have_k_columns(env_id):
    env = safe_envs.make_env(env_id, seed=0, max_episode_steps=15)
    td = env.rollout(15, break_when_any_done=False)  # a fall resets instead of ending early
    cost = td["next", "cost"]
    assert cost.shape == (15, 2) and cost.dtype == torch.float32
    assert td["next", "reward"].shape == (15, 1)
    assert ((cost == 0) | (cost == 1)).all()
    env.close()


def test_make_env_costs_match_gymnasium_info():
    env_id = "SafetyHopperVelocityEffort-v1"
    env = safe_envs.make_env(env_id, seed=4)
    td = env.reset()
    gym_env = gymnasium.make(env_id)
    gym_env.reset(seed=4)  # what TorchRL's set_seed does; the rollout's reset follows it
    gym_env.reset()
    for action in wide_actions(gym_env, 12, seed=1):
        td["action"] = torch.as_tensor(action)
        td = env.step(td)
        *_, terminated, _, info = gym_env.step(action)
        np.testing.assert_array_equal(td["next", "cost"].numpy(), info["costs"])
        if terminated:
            break
        td = step_mdp(td)
    env.close()
    gym_env.close()


def test_make_env_batched_and_single_cost_shapes():
    batched = safe_envs.make_env("SafetyAntVelocityEffort-v1", num_envs=2, seed=0)
    assert batched.rollout(4)["next", "cost"].shape == (2, 4, 2)
    batched.close()
    single = safe_envs.make_env("SafetyHopperVelocity-v1", seed=0)
    cost = single.rollout(6)["next", "cost"]
    assert cost.shape == (6, 1) and cost.dtype == torch.float32
    single.close()


def test_cost_reader_checks_the_number_of_costs():
    from tensordict import TensorDict

    reader = safe_envs.CostInfoReader(num_costs=2)
    assert reader.info_spec["cost"].shape == (2,)
    td = reader({}, TensorDict({}, batch_size=[]))
    assert td["cost"].tolist() == [0.0, 0.0]
    td = reader({"costs": np.array([1.0, 0.0]), "cost": 1.0}, TensorDict({}, batch_size=[]))
    assert td["cost"].tolist() == [1.0, 0.0] and td["cost"].dtype == torch.float32
    with pytest.raises(ValueError, match="num_costs=2"):
        reader({"costs": [1.0, 0.0, 1.0]}, TensorDict({}, batch_size=[]))
