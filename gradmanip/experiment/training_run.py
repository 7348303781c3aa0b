"""A training run's directory: description, metrics, progress, checkpoints, resume, stops.

:class:`TrainingRun` is the plumbing around a trainer's epochs, so that a recipe's loop reads
``while run.active(trainer): run.record(trainer, trainer.run_epoch())``:

- ``run.json`` describes the run; ``metrics.csv`` (and TensorBoard / W&B) gets one row per
  epoch; a progress bar shows the current epoch's values;
- ``checkpoints/last.pt`` is written every ``checkpoint_every`` epochs and after the last one;
  ``resume=True`` continues from it (rows after its epoch are dropped), and does nothing on a
  finished run (``summary.json`` written);
- SIGINT / SIGTERM end the loop after the current epoch; :meth:`close` then writes the
  checkpoint and raises :class:`~gradmanip.experiment.stop_signals.RunStopped`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradmanip.experiment.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from gradmanip.experiment.config_checks import ConfigError
from gradmanip.experiment.loggers import RunLogger
from gradmanip.experiment.progress import Progress
from gradmanip.experiment.stop_signals import RunStopped, StopRequest
from gradmanip.reporting import MetricsFile, write_run_info

SUMMARY_NAME = "summary.json"


class TrainingRun:
    """The run directory of one training run (see the module docstring).

    Args:
        directory: the run directory.
        total_steps: the budget in environment steps.
        resume: continue from the last checkpoint (an existing run without it is refused).
        checkpoint_every: epochs between checkpoints.
        backends, wandb_project: the loggers (``csv`` always; see
            :class:`~gradmanip.experiment.loggers.RunLogger`).
        progress: show a progress bar.
    """

    def __init__(
        self,
        directory: Path,
        total_steps: int,
        *,
        resume: bool = False,
        checkpoint_every: int = 10,
        backends: Sequence[str] = ("csv",),
        wandb_project: str | None = None,
        progress: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.total_steps = total_steps
        self.resume = resume
        self.checkpoint_every = checkpoint_every
        self.backends = list(backends)
        self.wandb_project = wandb_project
        self.show_progress = progress
        self.checkpoints = self.directory / "checkpoints"
        if MetricsFile(self.directory).path.exists() and not resume:
            raise ConfigError(
                f"resume: {self.directory} already holds a run; pass resume=true to continue "
                "it, or choose another seed or hydra.run.dir"
            )
        self._stop = StopRequest()
        self._logger: RunLogger | None = None
        self._progress: Progress | None = None

    @property
    def finished(self) -> bool:
        """Whether the directory holds a finished run (its ``summary.json``)."""
        return (self.directory / SUMMARY_NAME).exists()

    def summary(self) -> dict[str, Any]:
        return json.loads((self.directory / SUMMARY_NAME).read_text())

    def start(self, trainer: Any, info: Mapping[str, Any]) -> None:
        """Describe the run, open the logs and, with ``resume``, load the last checkpoint."""
        write_run_info(self.directory, dict(info))
        self._logger = RunLogger(
            self.directory,
            self.backends,
            name=self.directory.name,
            wandb_project=self.wandb_project,
        )
        if self.resume and has_checkpoint(self.checkpoints):
            trainer.load_state_dict(load_checkpoint(self.checkpoints))
            self._logger.truncate_after(trainer.epoch)
            print(f"resumed {self.directory} at epoch {trainer.epoch} ({trainer.frames} steps)")
        elif self.resume:
            print(f"resume: no checkpoint in {self.checkpoints} yet, starting from the beginning")
            self._logger.truncate_after(0)
        self._progress = Progress(
            self.total_steps, initial=trainer.frames, enabled=self.show_progress
        )
        self._stop.__enter__()

    def active(self, trainer: Any) -> bool:
        """Whether another epoch should run: budget left and no stop asked."""
        return trainer.frames < self.total_steps and self._stop.requested is None

    def record(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        """Log an epoch's metrics (``epoch`` and ``env_steps`` first), checkpoint on schedule."""
        counters = {"epoch": trainer.epoch, "env_steps": trainer.frames}
        row = counters | {k: v for k, v in metrics.items() if k not in counters}
        self._logger.log(row)
        self._progress.update(row)
        if trainer.epoch % self.checkpoint_every == 0:
            save_checkpoint(self.checkpoints, trainer.state_dict())

    def nonfinite(self, trainer: Any, error: FloatingPointError) -> FloatingPointError:
        """The error to raise for non-finite values in the coming epoch (names it and the
        checkpoint that is left intact)."""
        return FloatingPointError(
            f"non-finite values at epoch {trainer.epoch + 1} (after {trainer.frames} "
            f"environment steps): {error}. The last good checkpoint in {self.checkpoints} is "
            "intact."
        )

    def close(self, trainer: Any) -> None:
        """Checkpoint the last epoch (if not yet saved) and close the logs; raise RunStopped
        when a signal ended the loop."""
        self._stop.__exit__(None, None, None)
        if trainer.epoch % self.checkpoint_every or not has_checkpoint(self.checkpoints):
            save_checkpoint(self.checkpoints, trainer.state_dict())
        self._progress.close()
        self._logger.close()
        if self._stop.requested is not None:
            raise RunStopped(
                self._stop.requested,
                f"stopped by {self._stop.requested} at epoch {trainer.epoch}; "
                f"continue with resume=true (run directory {self.directory})",
            )

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        (self.directory / SUMMARY_NAME).write_text(json.dumps(dict(summary), indent=2))
