"""Check a run's configuration before any work starts.

Every failure is a :class:`ConfigError` naming the field, what was wrong and what is allowed.
Unknown ``env=`` / ``strategy=`` / ``algo=`` choices are reported by Hydra itself, with the list
of available options, before the recipe runs. On the command line a :class:`ConfigError` is one
``error: ...`` line on stderr and exit status 2 (:func:`exit_on_config_error`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium
import torch
from gymnasium.envs.registration import load_env_creator
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import safe_envs
from gradmanip.experiment.errors import ConfigError
from gradmanip.experiment.loggers import check_backends
from gradmanip.strategies.trust_region import TrustRegionStrategy
from safe_envs.validation import check_positive_int

CONFIG_ERROR_STATUS = 2


def full_error_requested() -> bool:
    """Whether ``HYDRA_FULL_ERROR=1`` asks for complete tracebacks (as Hydra reads it)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def in_multirun() -> bool:
    """Whether this is a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_config_error(err: ConfigError) -> None:
    """Print ``error: <message>`` on stderr, as one write (jobs of a parallel sweep may report
    at the same moment: one write per line keeps their lines whole)."""
    sys.stderr.write(f"error: {err}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a :class:`ConfigError` into ``error: <message>`` on stderr and exit status 2.

    With ``HYDRA_FULL_ERROR=1`` the error propagates with its traceback instead.
    """
    try:
        yield
    except ConfigError as err:
        if full_error_requested():
            raise
        report_config_error(err)
        sys.exit(CONFIG_ERROR_STATUS)


def _int_at_least(cfg: DictConfig, field: str, minimum: int) -> int:
    """The integer value of ``field`` (``1e6`` is accepted and stored as ``1000000``)."""
    value = _get(cfg, field)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
        OmegaConf.update(cfg, field, value, merge=False)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_switches(cfg: DictConfig) -> None:
    """The recipe's on/off fields are true or false (a typo such as ``resume=ture`` is a
    string, which Python would read as true)."""
    for field in ("normalize_obs", "resume", "video", "progress"):
        value = OmegaConf.select(cfg, field)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{field} must be true or false, got {value!r}")


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


def task_parameters(env_id: str) -> list[str]:
    """Keyword parameters a ``safe_envs`` task accepts (its ``env.kwargs``), sorted.

    They are the task constructor's parameters, less those the id fixes (e.g. ``base`` of the
    velocity tasks) and ``render_mode``, plus Gymnasium's ``max_episode_steps``.
    """
    safe_envs.task_entry(env_id)  # registers the tasks; an unknown id lists the known ones
    spec = gymnasium.spec(env_id)
    creator = spec.entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    fixed = set(spec.kwargs) | {"render_mode"}
    names = {
        name
        for name, param in inspect.signature(creator).parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and name not in fixed
    }
    return sorted(names | {"max_episode_steps"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(values: Any) -> str:
    """A setting as typed on the command line: ``25`` or ``[25,200]``."""
    if isinstance(values, list | tuple):
        return "[" + ",".join(f"{v:g}" for v in values) + "]"
    return f"{values:g}"


def _constraints(env_id: str, count: int) -> str:
    return f"{env_id} has {count} constraint{'s' if count != 1 else ''}"


def check_constraint_settings(cfg: DictConfig) -> int:
    """The per-constraint fields of the task agree with its number of constraints K
    (``safe_envs.num_costs(env.id)``); returns K.

    ``env.cost_limit``: a number for K = 1 (or a list of one), a list of K numbers for K > 1
    (finite, >= 0). ``env.upper_slack`` / ``env.lower_slack``: a number shared by every
    constraint or a list of K numbers (their signs are checked by the strategies that use them).
    """
    env_id = cfg.env.id
    count = safe_envs.num_costs(env_id)
    default = safe_envs.default_cost_limit(env_id)
    example = f"env.cost_limit={_shown(default)}"
    limit = _get(cfg, "env.cost_limit")
    if OmegaConf.is_list(limit):
        limits = list(limit)
        if len(limits) != count:
            what = "one number" if count == 1 else f"{count} limits, one per constraint"
            raise ConfigError(
                f"env.cost_limit lists {len(limits)} limit{'s' if len(limits) != 1 else ''} but "
                f"{_constraints(env_id, count)}; give {what}, e.g. {example}"
            )
        if not all(_is_number(v) and math.isfinite(v) and v >= 0 for v in limits):
            raise ConfigError(
                f"env.cost_limit must be finite numbers >= 0, got {OmegaConf.to_container(limit)}"
            )
    elif count > 1:
        raise ConfigError(
            f"env.cost_limit: {_constraints(env_id, count)}; give one limit per constraint, "
            f"e.g. {example}"
        )
    elif not _is_number(limit) or not math.isfinite(limit) or limit < 0:
        raise ConfigError(f"env.cost_limit must be a finite number >= 0, got {limit!r}")
    for field in ("env.upper_slack", "env.lower_slack"):
        value = _get(cfg, field)
        values = list(value) if OmegaConf.is_list(value) else [value]
        if not all(_is_number(v) for v in values):
            shown = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
            raise ConfigError(f"{field} must be a number or a list of numbers, got {shown!r}")
        if OmegaConf.is_list(value) and len(values) not in (1, count):
            zeros = _shown([0.0] * count)
            raise ConfigError(
                f"{field} lists {len(values)} values but {_constraints(env_id, count)}; give "
                f"one number shared by all or {count}, one per constraint, e.g. {field}={zeros}"
            )
    return count


def _check_strategy_constraints(cfg: DictConfig, strategy: Any, count: int) -> None:
    """The strategy's per-constraint settings fit the task's K constraints: one combination of
    K + 1 small directions by a throwaway copy (built only for this check)."""
    inner = getattr(strategy, "strategy", strategy)  # DelayedSafety holds the configured one
    try:
        inner.aggregate(
            torch.ones(2), torch.ones(count, 2), torch.zeros(count, dtype=torch.float64)
        )
    except ValueError as err:
        raise ConfigError(f"strategy: {_constraints(cfg.env.id, count)}: {err}") from None


def _check_task_kwargs(cfg: DictConfig) -> None:
    """Every ``env.kwargs`` entry is a parameter of the task, with a value it accepts."""
    kwargs = _get(cfg, "env.kwargs")
    if not isinstance(kwargs, DictConfig):
        raise ConfigError(f"env.kwargs must be a mapping of task parameters, got {kwargs!r}")
    kwargs = OmegaConf.to_container(kwargs, resolve=True)
    valid = task_parameters(cfg.env.id)
    for name in kwargs:
        if name not in valid:
            raise ConfigError(
                f"env.kwargs.{name} is not a parameter of {cfg.env.id}; valid ones: "
                f"{', '.join(valid)}"
            )

    def build_task() -> None:
        if "max_episode_steps" in kwargs:
            check_positive_int("max_episode_steps", kwargs["max_episode_steps"])
        gymnasium.make(cfg.env.id, **kwargs).close()

    _wrap("env.kwargs", build_task)


def _check_minibatch(cfg: DictConfig, field: str, batch: int) -> None:
    """``field`` (a minibatch size of the base algorithm, if it has one) fits in one batch."""
    if OmegaConf.select(cfg, field) is None:
        return
    size = _int_at_least(cfg, field, 1)
    if size > batch:
        raise ConfigError(
            f"{field} ({size}) is larger than the batch of one epoch (steps_per_epoch = "
            f"{batch}): lower {field} or raise steps_per_epoch"
        )


def _check_off_policy(cfg: DictConfig, total: int) -> None:
    """The replay settings of an off-policy base (``algo.kind: off_policy``) fit together and
    with the run: one environment in this process, raw observations, a batch no larger than
    the buffer, updates after the warm-up."""
    if _get(cfg, "normalize_obs"):
        raise ConfigError(
            f"normalize_obs: algo={cfg.algo.name} stores raw observations in its replay buffer; "
            "set normalize_obs=false"
        )
    if _get(cfg, "num_workers") != 1 or _get(cfg, "envs_per_worker") != 1:
        raise ConfigError(
            f"num_workers / envs_per_worker: algo={cfg.algo.name} steps one environment in this "
            "process; set num_workers=1 and envs_per_worker=1"
        )
    batch = _int_at_least(cfg, "algo.batch_size", 1)
    buffer = _int_at_least(cfg, "algo.buffer_size", 1)
    if batch > buffer:
        raise ConfigError(
            f"algo.batch_size ({batch}) is larger than algo.buffer_size ({buffer}): lower "
            "algo.batch_size or raise algo.buffer_size"
        )
    warmup = _int_at_least(cfg, "algo.warmup_steps", 0)
    if warmup >= total:
        raise ConfigError(
            f"algo.warmup_steps ({warmup}) must be smaller than total_steps ({total}), else no "
            "update runs: lower algo.warmup_steps or raise total_steps"
        )
    ratio = _get(cfg, "algo.updates_per_step")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < math.inf:
        raise ConfigError(f"algo.updates_per_step must be a number > 0, got {ratio!r}")
    _int_at_least(cfg, "algo.cost_window", 1)
    sampler = _get(cfg, "algo.sampler")
    if sampler not in ("random", "without_replacement"):
        raise ConfigError(
            f"algo.sampler must be one of random, without_replacement; got {sampler!r}"
        )


def _check_logger(cfg: DictConfig) -> None:
    """The logging backends are known and their optional packages installed."""
    check_backends(list(_get(cfg, "logger.backends")))


def check_run_dir(run_dir: str | os.PathLike, field: str = "hydra.run.dir") -> None:
    """``run_dir`` exists (or can be made) and accepts files; else a ConfigError naming
    ``field``, the setting that chose it."""
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigError(
            f"{field}: cannot write the run directory {path} ({reason}); choose another {field}"
        ) from None


def run_dir_field() -> str:
    """The setting that chose the run directory: ``hydra.sweep.dir`` in a multirun, else
    ``hydra.run.dir``."""
    return "hydra.sweep.dir" if in_multirun() else "hydra.run.dir"


def check_run_config(
    cfg: DictConfig, build_strategy: Callable[[], Any], build_algo: Callable[[Any], Any]
) -> None:
    """Validate the task's per-constraint fields against its number of constraints, the
    budget, collection, task, logging and checkpoint fields, then build the strategy (and check
    its per-constraint settings against the task's K) and the base algorithm once on a tiny
    network so that their own settings are checked too. Integer fields given as whole floats
    (``total_steps=1e6``) are stored as ints."""
    _wrap("env.id", lambda: safe_envs.task_entry(cfg.env.id))
    num_costs = check_constraint_settings(cfg)
    _check_switches(cfg)
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
    _check_minibatch(cfg, "algo.base.minibatch_size", per_epoch)
    _check_minibatch(cfg, "algo.base.critic_batch_size", per_epoch)
    _check_task_kwargs(cfg)
    _check_logger(cfg)
    _int_at_least(cfg, "checkpoint_every", 1)
    episodes = _int_at_least(cfg, "eval_episodes", 0)
    if _int_at_least(cfg, "eval_every", 0) and not episodes:
        raise ConfigError(
            "eval_every evaluates eval_episodes episodes during training, but eval_episodes=0: "
            "set eval_episodes >= 1, or eval_every=0"
        )
    _int_at_least(cfg, "torch_threads", 1)
    _int_at_least(cfg, "safety_start_epoch", 0)
    hidden = _get(cfg, "hidden")
    if (
        not OmegaConf.is_list(hidden)
        or len(hidden) == 0
        or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)
    ):
        raise ConfigError(
            f"hidden must be a non-empty list of positive widths, e.g. hidden=[64,64], "
            f"got {hidden!r}"
        )
    off_policy = OmegaConf.select(cfg, "algo.kind", default="on_policy") == "off_policy"
    if off_policy:
        _check_off_policy(cfg, total)
    elif OmegaConf.select(cfg, "algo.cost_window") is not None:
        try:
            _int_at_least(cfg, "algo.cost_window", 1)
        except ConfigError as error:
            raise ConfigError(
                f"{error} (or null: J_c_hat from the episodes of each epoch)"
            ) from None
    for field in ("algo.gamma",) if off_policy else ("algo.gamma", "algo.lmbda"):
        value = _get(cfg, field)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{field} must lie in [0, 1], got {value!r}")
    strategy = _wrap("strategy", build_strategy)
    _check_strategy_constraints(cfg, strategy, num_costs)
    _check_trust_region_pairing(cfg, strategy)
    _wrap("algo.base", lambda: build_algo(strategy))


def _check_trust_region_pairing(cfg: DictConfig, strategy: Any) -> None:
    """Trust-region strategies (CPO, PCPO) run on the natural-gradient base only."""
    inner = getattr(strategy, "strategy", strategy)  # through DelayedSafety
    if isinstance(inner, TrustRegionStrategy) and _get(cfg, "algo.name") != "trpo":
        raise ConfigError(
            f"strategy={inner.name} is a trust-region rule (its step is sized in the Fisher "
            f"metric and line-searched) and needs the natural-gradient base: set algo=trpo "
            f"(or algo=trpo_omnisafe), got algo={_get(cfg, 'algo.name')}"
        )
