"""Task catalogue: registration with Gymnasium plus the metadata training recipes need.

A task is registered with :func:`register_task` (one line in ``safe_envs/catalogue.py``); it then
works with ``gymnasium.make(id)``, :func:`safe_envs.make_env`, :func:`available_ids` and
:func:`default_cost_limit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from safe_envs.validation import check_real


@dataclass(frozen=True)
class TaskEntry:
    """What the catalogue knows about one task.

    ``cost_limit_source`` says where ``default_cost_limit`` comes from: ``"published"`` (the
    benchmark's authors) or ``"safe_envs"`` (our documented default, see docs/tasks.md).
    ``num_costs`` is K, the number of constraints: a task with K > 1 reports ``info["costs"]``
    (K values) and has one default limit per constraint (a tuple); K = 1 tasks have a float.
    """

    env_id: str
    entry_point: str
    default_cost_limit: float | tuple[float, ...]
    cost_limit_source: str = "published"
    max_episode_steps: int = 1000
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_costs: int = 1


_TASKS: dict[str, TaskEntry] = {}


class UnknownTaskError(ValueError):
    """Raised for an id that is not a registered ``safe_envs`` task; lists the available ids."""


def register_task(
    env_id: str,
    entry_point: str,
    default_cost_limit: float | Sequence[float],
    *,
    cost_limit_source: str = "published",
    max_episode_steps: int = 1000,
    **kwargs: Any,
) -> TaskEntry:
    """Register ``env_id`` with Gymnasium (``entry_point`` is ``"module:callable"``).

    ``default_cost_limit`` is a float for a single-cost task, or a sequence of K >= 2 limits for
    a task with K constraints (which then reports ``info["costs"]``, K values per step).
    ``kwargs`` are the task's default parameters; ``gymnasium.make(env_id, **overrides)`` and
    ``safe_envs.make_env(env_id, **overrides)`` override them.
    """
    if env_id in _TASKS:
        raise ValueError(f"env_id {env_id!r} is already registered; choose another id.")
    limit, num_costs = _check_limits(default_cost_limit)
    if cost_limit_source not in ("published", "safe_envs"):
        raise ValueError(
            f"cost_limit_source must be 'published' or 'safe_envs', got {cost_limit_source!r}."
        )
    entry = TaskEntry(
        env_id,
        entry_point,
        limit,
        cost_limit_source,
        max_episode_steps,
        dict(kwargs),
        num_costs,
    )
    gymnasium.register(
        id=env_id,
        entry_point=entry_point,
        max_episode_steps=max_episode_steps,
        kwargs=dict(kwargs),
    )
    _TASKS[env_id] = entry
    return entry


def _check_limits(limit: object) -> tuple[float | tuple[float, ...], int]:
    """(limit as a float or a tuple of K floats, K) from ``register_task``'s argument."""
    if isinstance(limit, Sequence) and not isinstance(limit, str):
        if len(limit) < 2:
            raise ValueError(
                f"default_cost_limit must be a float or a sequence of K >= 2 limits, got {limit!r}."
            )
        limits = tuple(check_real("default_cost_limit", value, minimum=0.0) for value in limit)
        return limits, len(limits)
    return check_real("default_cost_limit", limit, minimum=0.0), 1


def available_ids() -> list[str]:
    """The registered ``safe_envs`` task ids, sorted."""
    return sorted(_TASKS)


def task_entry(env_id: str) -> TaskEntry:
    """Catalogue entry of ``env_id``; raises :class:`UnknownTaskError` listing the ids."""
    try:
        return _TASKS[env_id]
    except (KeyError, TypeError):
        raise UnknownTaskError(unknown_id_message(env_id)) from None


def default_cost_limit(env_id: str) -> float | tuple[float, ...]:
    """Default per-episode cost limit of ``env_id`` (see docs/tasks.md for the sources).

    A float for a single-cost task; one limit per constraint (a tuple of K floats) for a task
    with ``task_entry(env_id).num_costs == K > 1``.
    """
    return task_entry(env_id).default_cost_limit


def num_costs(env_id: str) -> int:
    """K, the number of constraints of ``env_id`` (the trailing size of its TorchRL cost)."""
    return task_entry(env_id).num_costs


def unknown_id_message(env_id: object) -> str:
    """Error text for an unknown id, listing what is available."""
    return (
        f"env_id {env_id!r} is not a safe_envs task. Available ids: {', '.join(available_ids())}."
    )
