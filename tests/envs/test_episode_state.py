"""An episode's state read from one copy of a task continues it bit for bit in another."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from safe_envs_testing import actions, steps_for

import safe_envs
from gradmanip.rl.episode_state import episode_state, has_episode_state, restore_episode_state


def rollout(env: gymnasium.Env, moves: list[np.ndarray]) -> list[tuple]:
    """Every step's outcome, with a reset (unseeded: the env's own generator) after an end."""
    out = []
    for action in moves:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), reward, terminated, truncated, info.get("cost")))
        if terminated or truncated:
            out.append(env.reset()[0].tobytes())
    return out


@pytest.mark.parametrize("env_id", safe_envs.available_ids())
def test_a_restored_copy_continues_the_episode_exactly(env_id):
    env = gymnasium.make(env_id)
    env.reset(seed=3)
    n = steps_for(env_id)
    rollout(env, actions(env, n, seed=0))
    state = episode_state(env)
    assert state is not None
    moves = actions(env, 4 * n, seed=1)
    copy = gymnasium.make(env_id)
    copy.reset(seed=99)  # another start: everything it holds is replaced
    restore_episode_state(copy, state)
    assert rollout(copy, moves) == rollout(env, moves)


def test_the_time_limit_and_the_next_reset_carry_over():
    env = gymnasium.make("SafetyPointVelocity-v0")  # 100-step episodes
    env.reset(seed=0)
    rollout(env, actions(env, 60))
    copy = gymnasium.make("SafetyPointVelocity-v0")
    copy.reset(seed=1)
    restore_episode_state(copy, episode_state(env))
    moves = actions(env, 45, seed=1)
    continued = rollout(copy, moves)
    steps = [step for step in continued if isinstance(step, tuple)]
    assert [step[3] for step in steps].index(True) == 39  # the episode's 100th step
    assert continued == rollout(env, moves)  # the reset after it draws the same start


class Stateless(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))


def test_a_task_without_readable_state_has_none():
    assert not has_episode_state(Stateless())
    assert episode_state(Stateless()) is None
    assert has_episode_state(gymnasium.make("SafetyPointVelocity-v0"))
    assert has_episode_state(gymnasium.make("SafetyHopperVelocity-v1"))


def test_a_state_of_another_kind_of_task_is_refused():
    env = gymnasium.make("SafetyPointVelocity-v0")
    env.reset(seed=0)
    hopper = gymnasium.make("SafetyHopperVelocity-v1")
    hopper.reset(seed=0)
    with pytest.raises(ValueError, match="is not a MuJoCo task"):
        restore_episode_state(env, episode_state(hopper))
    walker = gymnasium.make("SafetyWalker2dVelocity-v1")
    walker.reset(seed=0)
    with pytest.raises(ValueError, match="another MuJoCo model's"):
        restore_episode_state(walker, episode_state(hopper))
