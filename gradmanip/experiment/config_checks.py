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
from gymnasium.envs.registration import load_env_creator
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import safe_envs
from gradmanip.experiment.errors import ConfigError
from gradmanip.experiment.loggers import check_backends
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
    """Validate the budget, collection, task, logging and checkpoint fields, then build the
    strategy and the base algorithm once on a tiny network so that their own settings are
    checked too. Integer fields given as whole floats (``total_steps=1e6``) are stored as ints."""
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
    _check_minibatch(cfg, "algo.base.minibatch_size", per_epoch)
    _check_minibatch(cfg, "algo.base.critic_batch_size", per_epoch)
    _check_task_kwargs(cfg)
    _check_logger(cfg)
    _int_at_least(cfg, "checkpoint_every", 1)
    _int_at_least(cfg, "eval_episodes", 0)
    _int_at_least(cfg, "torch_threads", 1)
    _int_at_least(cfg, "safety_start_epoch", 0)
    hidden = _get(cfg, "hidden")
    if len(hidden) == 0 or any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ConfigError(f"hidden must be a non-empty list of positive widths, got {hidden}")
    off_policy = OmegaConf.select(cfg, "algo.kind", default="on_policy") == "off_policy"
    if off_policy:
        _check_off_policy(cfg, total)
    for field in ("algo.gamma",) if off_policy else ("algo.gamma", "algo.lmbda"):
        value = _get(cfg, field)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{field} must lie in [0, 1], got {value!r}")
    strategy = _wrap("strategy", build_strategy)
    _wrap("algo.base", lambda: build_algo(strategy))
