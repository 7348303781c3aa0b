"""Check a run's configuration before any work starts.

Every failure is a :class:`ConfigError` naming the field, what was wrong and what is allowed.
Unknown ``env=`` / ``strategy=`` / ``algo=`` choices are reported by Hydra itself, with the list
of available options, before the recipe runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig


class ConfigError(ValueError):
    """A configuration field has a value the run cannot use."""


def _int_at_least(cfg: DictConfig, field: str, minimum: int) -> int:
    value = _get(cfg, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return value


def _get(cfg: DictConfig, field: str) -> Any:
    node: Any = cfg
    for part in field.split("."):
        if part not in node:
            raise ConfigError(f"{field} is missing from the configuration")
        node = node[part]
    return node


def _wrap(field: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{field}: {cause}") from None
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{field}: {err}") from None


def check_run_config(
    cfg: DictConfig, build_strategy: Callable[[], Any], build_algo: Callable[[], Any]
) -> None:
    """Validate the budget, collection, task and checkpoint fields, then build the strategy and
    the base algorithm once on a tiny network so that their own settings are checked too."""
    import safe_envs

    _wrap("env.id", lambda: safe_envs.task_entry(cfg.env.id))
    limit = _get(cfg, "env.cost_limit")
    if not isinstance(limit, int | float) or not math.isfinite(limit) or limit < 0:
        raise ConfigError(f"env.cost_limit must be a finite number >= 0, got {limit!r}")
    _int_at_least(cfg, "seed", 0)
    per_epoch = _int_at_least(cfg, "steps_per_epoch", 1)
    total = _int_at_least(cfg, "total_steps", 1)
    if total < per_epoch:
        raise ConfigError(
            f"total_steps ({total}) is smaller than one epoch (steps_per_epoch = "
            f"{per_epoch}): raise total_steps or lower steps_per_epoch"
        )
    workers = _int_at_least(cfg, "num_workers", 1)
    copies = _int_at_least(cfg, "envs_per_worker", 1)
    if per_epoch % (workers * copies):
        raise ConfigError(
            f"steps_per_epoch ({per_epoch}) must be a multiple of num_workers x "
            f"envs_per_worker ({workers} x {copies})"
        )
    collector = _get(cfg, "collector")
    if collector not in ("auto", "lean", "torchrl"):
        raise ConfigError(f"collector must be one of auto, lean, torchrl; got {collector!r}")
    if collector == "lean" and workers * copies != 1:
        raise ConfigError(
            "collector=lean steps one environment in this process: set "
            "num_workers=1 and envs_per_worker=1, or use collector=torchrl"
        )
    clip = _get(cfg, "obs_clip")
    if not isinstance(clip, int | float) or not clip > 0:
        raise ConfigError(f"obs_clip must be a number > 0, got {clip!r}")
    _int_at_least(cfg, "checkpoint_every", 1)
    _int_at_least(cfg, "eval_episodes", 0)
    _int_at_least(cfg, "torch_threads", 1)
    _int_at_least(cfg, "safety_start_epoch", 0)
    hidden = _get(cfg, "hidden")
    if len(hidden) == 0 or any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ConfigError(f"hidden must be a non-empty list of positive widths, got {hidden}")
    for field in ("algo.gamma", "algo.lmbda"):
        value = _get(cfg, field)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{field} must lie in [0, 1], got {value!r}")
    strategy = _wrap("strategy", build_strategy)
    _wrap("algo.base", lambda: build_algo(strategy))
