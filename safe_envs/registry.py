"""Task catalogue: registration with Gymnasium plus the metadata training recipes need.

A task is registered with :func:`register_task` (one line in ``safe_envs/catalogue.py``); it then
works with ``gymnasium.make(id)``, :func:`safe_envs.make_env`, :func:`available_ids` and
:func:`default_cost_limit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium


@dataclass(frozen=True)
class TaskEntry:
    """What the catalogue knows about one task.

    ``cost_limit_source`` says where ``default_cost_limit`` comes from: ``"published"`` (the
    benchmark's authors) or ``"safe_envs"`` (our documented default, see docs/tasks.md).
    """

    env_id: str
    entry_point: str
    default_cost_limit: float
    cost_limit_source: str = "published"
    max_episode_steps: int = 1000
    kwargs: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, TaskEntry] = {}


class UnknownTaskError(ValueError):
    """Raised for an id that is not a registered ``safe_envs`` task; lists the available ids."""


def register_task(
    env_id: str,
    entry_point: str,
    default_cost_limit: float,
    *,
    cost_limit_source: str = "published",
    max_episode_steps: int = 1000,
    **kwargs: Any,
) -> TaskEntry:
    """Register ``env_id`` with Gymnasium (``entry_point`` is ``"module:callable"``).

    ``kwargs`` are the task's default parameters; ``gymnasium.make(env_id, **overrides)`` and
    ``safe_envs.make_env(env_id, **overrides)`` override them.
    """
    if env_id in _TASKS:
        raise ValueError(f"env_id {env_id!r} is already registered; choose another id.")
    if default_cost_limit < 0:
        raise ValueError(f"default_cost_limit must be >= 0, got {default_cost_limit!r}.")
    if cost_limit_source not in ("published", "safe_envs"):
        raise ValueError(
            f"cost_limit_source must be 'published' or 'safe_envs', got {cost_limit_source!r}."
        )
    entry = TaskEntry(
        env_id,
        entry_point,
        float(default_cost_limit),
        cost_limit_source,
        max_episode_steps,
        dict(kwargs),
    )
    gymnasium.register(
        id=env_id,
        entry_point=entry_point,
        max_episode_steps=max_episode_steps,
        kwargs=dict(kwargs),
    )
    _TASKS[env_id] = entry
    return entry


def available_ids() -> list[str]:
    """The registered ``safe_envs`` task ids, sorted."""
    return sorted(_TASKS)


def task_entry(env_id: str) -> TaskEntry:
    """Catalogue entry of ``env_id``; raises :class:`UnknownTaskError` listing the ids."""
    try:
        return _TASKS[env_id]
    except (KeyError, TypeError):
        raise UnknownTaskError(unknown_id_message(env_id)) from None


def default_cost_limit(env_id: str) -> float:
    """Default per-episode cost limit of ``env_id`` (see docs/tasks.md for the sources)."""
    return task_entry(env_id).default_cost_limit


def unknown_id_message(env_id: object) -> str:
    """Error text for an unknown id, listing what is available."""
    return (
        f"env_id {env_id!r} is not a safe_envs task. Available ids: {', '.join(available_ids())}."
    )
