"""Registration, catalogue metadata, check_env on every id, unknown-id errors."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from safe_envs_testing import MUJOCO_TASK_IDS, VELOCITY_IDS

import safe_envs

VELOCITY_ENTRY = "safe_envs.velocity:make_velocity_task"


def test_all_tasks_are_registered_and_listed():
    ids = safe_envs.available_ids()
    assert ids == sorted(ids)
    for env_id in VELOCITY_IDS + MUJOCO_TASK_IDS:
        assert env_id in ids
        assert env_id in gymnasium.registry


@pytest.mark.parametrize("env_id", safe_envs.available_ids())
def test_check_env(env_id):
    env = gymnasium.make(env_id, disable_env_checker=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(env, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", VELOCITY_IDS + MUJOCO_TASK_IDS)
def test_episodes_capped_at_1000_steps(env_id):
    assert gymnasium.spec(env_id).max_episode_steps == 1000


def test_time_limit_truncates_at_1000():
    env = gymnasium.make("SafetySwimmerVelocity-v1")
    env.reset(seed=0)
    zero = env.action_space.low * 0
    for _ in range(999):
        *_, terminated, truncated, _ = env.step(zero)
        assert not (terminated or truncated)
    *_, truncated, info = env.step(zero)
    assert truncated and info["cost"] == 0.0


@pytest.mark.parametrize(
    "env_id", ["SafetyHopperVelocity-v1", "SafetyHopper-v4", "SafetyPusher-v5"]
)
def test_no_deprecation_warning_for_our_ids(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gymnasium.make(env_id)
        env.reset(seed=0)
        env.step(env.action_space.sample())
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_gymnasium_v4_ids_keep_their_own_warning():
    with pytest.warns(DeprecationWarning, match="out of date"):
        gymnasium.make("Hopper-v4").close()


def test_default_cost_limits():
    for env_id in VELOCITY_IDS:
        assert safe_envs.default_cost_limit(env_id) == 25.0
        assert safe_envs.task_entry(env_id).cost_limit_source == "published"
    assert safe_envs.default_cost_limit("SafetyWalker2d-v4") == 40.0
    assert safe_envs.default_cost_limit("SafetyHumanoidStandup-v4") == 1400.0
    assert safe_envs.default_cost_limit("SafetyReacher-v4") == 40.0
    for env_id in ["SafetyHopper-v4", "SafetyAnt-v4", "SafeHalfCheetah-v4", "SafetyHumanoid-v4"]:
        entry = safe_envs.task_entry(env_id)
        assert entry.cost_limit_source == "safe_envs" and entry.default_cost_limit > 0
    for env_id in safe_envs.available_ids():
        limit = safe_envs.default_cost_limit(env_id)
        limits = limit if isinstance(limit, tuple) else (limit,)
        assert len(limits) == safe_envs.num_costs(env_id) and min(limits) >= 0


def test_unknown_id_lists_available_ids():
    with pytest.raises(safe_envs.UnknownTaskError, match="SafetyHopperVelocity-v1") as err:
        safe_envs.default_cost_limit("SafetyHopperVelocity-v9")
    assert isinstance(err.value, ValueError)
    for bad in ["SafetyHoperVelocity-v1", "SafetyUnknown-v1"]:
        with pytest.raises(gymnasium.error.NameNotFound, match="Available safe_envs ids") as err:
            gymnasium.make(bad)
        for env_id in safe_envs.available_ids():
            assert env_id in str(err.value)
    with pytest.raises(gymnasium.error.VersionNotFound, match="SafetyAntVelocity-v1"):
        gymnasium.make("SafetyAntVelocity-v2")


def test_unrelated_unknown_ids_keep_gymnasium_message():
    with pytest.raises(gymnasium.error.NameNotFound) as err:
        gymnasium.make("CartPoleXYZ-v1")
    assert "safe_envs" not in str(err.value)


def test_register_task_rejects_duplicates_and_bad_limits():
    with pytest.raises(ValueError, match="already registered"):
        safe_envs.register_task("SafetyHopperVelocity-v1", VELOCITY_ENTRY, 25)
    with pytest.raises(ValueError, match="default_cost_limit"):
        safe_envs.register_task("SafetyNew-v0", VELOCITY_ENTRY, -1.0)
    with pytest.raises(ValueError, match="cost_limit_source"):
        safe_envs.register_task("SafetyNew-v0", VELOCITY_ENTRY, 1.0, cost_limit_source="x")
    assert "SafetyNew-v0" not in safe_envs.available_ids()


def test_gymnasium_use_does_not_import_torchrl():
    code = (
        "import sys, gymnasium, safe_envs; gymnasium.make('SafetySwimmerVelocity-v1'); "
        "assert 'torchrl' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        safe_envs.no_such_name  # noqa: B018
