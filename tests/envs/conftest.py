"""Fixtures for the safe_envs tests."""

from __future__ import annotations

import gymnasium
import pytest

import safe_envs  # noqa: F401  (registers the tasks)


@pytest.fixture
def make():
    """``make(id, **kwargs)`` -> env closed at the end of the test."""
    made: list[gymnasium.Env] = []

    def _make(env_id: str, **kwargs) -> gymnasium.Env:
        env = gymnasium.make(env_id, **kwargs)
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()
