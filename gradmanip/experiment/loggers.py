"""Where every epoch's metrics go: ``metrics.csv`` always, TensorBoard and W&B when asked.

TensorBoard and Weights & Biases go through TorchRL's loggers; their packages are optional
(``pip install 'gradmanip[tensorboard]'`` / ``pip install 'gradmanip[wandb]'``) and a missing one
is named, with the command that installs it, before any work starts.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from gradmanip.experiment.errors import ConfigError
from gradmanip.reporting import MetricsFile

BACKENDS = ("csv", "tensorboard", "wandb")
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_backends(backends: Sequence[str]) -> None:
    """Fail early (ConfigError) on an unknown or uninstalled logging backend."""
    for name in backends:
        if name not in BACKENDS:
            raise ConfigError(f"logger.backends: unknown backend {name!r}; allowed: {BACKENDS}")
        package = _PACKAGE.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"logger.backends: {name!r} needs the {package} package, which is not "
                f"installed: pip install 'gradmanip[{name}]'"
            )


class RunLogger:
    """Fan one metrics dict out to the CSV file and the optional TorchRL loggers."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        backends: Sequence[str] = ("csv",),
        name: str = "run",
        wandb_project: str | None = None,
    ) -> None:
        check_backends(backends)
        self.run_dir = Path(run_dir)
        self.csv = MetricsFile(self.run_dir)
        self._torchrl = []
        if "tensorboard" in backends:
            from torchrl.record.loggers import TensorboardLogger

            self._torchrl.append(TensorboardLogger(name, log_dir=str(self.run_dir / "tensorboard")))
        if "wandb" in backends:
            from torchrl.record.loggers import WandbLogger

            self._torchrl.append(
                WandbLogger(name, save_dir=str(self.run_dir), project=wandb_project)
            )

    def log(self, metrics: Mapping[str, float]) -> None:
        """Write one epoch (``metrics`` must hold ``epoch`` and ``env_steps``)."""
        self.csv.write(metrics)
        step = int(metrics["env_steps"])
        for logger in self._torchrl:
            for key, value in metrics.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    logger.log_scalar(key, float(value), step=step)

    def truncate_after(self, epoch: int) -> None:
        """On resume: forget CSV rows written after the checkpoint's epoch."""
        self.csv.truncate_after(epoch)

    def close(self) -> None:
        for logger in self._torchrl:
            experiment = getattr(logger, "experiment", None)
            for method in ("flush", "close", "finish"):
                if callable(getattr(experiment, method, None)):
                    getattr(experiment, method)()
                    break
