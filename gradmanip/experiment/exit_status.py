"""Exit statuses of the recipes, for shells and schedulers.

- ``0``: the run finished;
- ``2``: a configuration error, reported as one ``error: ...`` line on stderr before any work
  (``HYDRA_FULL_ERROR=1``: with its traceback);
- ``130`` / ``143``: stopped by SIGINT / SIGTERM after writing a checkpoint (``128 + signal``).

A single run exits from the recipe's main function (:func:`exit_with_status`). The jobs of a
multirun may run in worker processes (joblib, Ray) that must not exit, so they fail normally and
:class:`ExitStatus`, a Hydra callback, turns the failure into the same message and status in the
launching process: once every job of the sweep has run for configuration errors (as Hydra does
for any failed job), at once for a stop of a job run in the launching process. The callback also
checks that the run (or sweep) directory can be written before Hydra creates it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gradmanip.experiment.config_checks import (
    CONFIG_ERROR_STATUS,
    ConfigError,
    check_run_dir,
    exit_on_config_error,
    full_error_requested,
    in_multirun,
    report_config_error,
)
from gradmanip.experiment.stop_signals import RunStopped, exit_on_stop


@contextlib.contextmanager
def exit_with_status() -> Iterator[None]:
    """Around a recipe's run: a ConfigError or a stop ends the process with its status.

    In a multirun job both propagate instead, as the job's failure, for :class:`ExitStatus` to
    report in the launching process.
    """
    if in_multirun():
        yield
    else:
        with exit_on_config_error(), exit_on_stop():
            yield


class ExitStatus(Callback):
    """Hydra callback of the recipes (``hydra.callbacks`` in their configuration)."""

    def __init__(self) -> None:
        self._launching_pid: int | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with exit_on_config_error():
            check_run_dir(_resolved(config, "hydra.run.dir"), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._launching_pid = os.getpid()
        with exit_on_config_error():
            check_run_dir(_resolved(config, "hydra.sweep.dir"), "hydra.sweep.dir")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """A failed job's ConfigError or RunStopped becomes its message and a ``SystemExit``
        that the sweeper raises in the launching process when it reads the job's result."""
        if job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value
        if isinstance(error, ConfigError) and not full_error_requested():
            report_config_error(error)
            job_return.return_value = SystemExit(CONFIG_ERROR_STATUS)
        elif isinstance(error, RunStopped):
            print(error, flush=True)
            if os.getpid() == self._launching_pid:
                raise SystemExit(error.exit_status)  # a stop ends a sequential sweep at once
            job_return.return_value = SystemExit(error.exit_status)


def _resolved(config: DictConfig, key: str) -> str:
    """``key`` of ``config`` resolved as Hydra resolves it for a job (``${hydra:...}`` too)."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(config)
    try:
        return str(OmegaConf.select(config, key))
    finally:
        hydra_config.cfg = previous
