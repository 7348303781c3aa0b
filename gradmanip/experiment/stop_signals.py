"""Graceful stop on SIGINT / SIGTERM.

The first signal asks the run to stop at the end of the current epoch (the caller then writes a
checkpoint, flushes its logs and raises :class:`RunStopped`); a second SIGINT interrupts at once.
A stopped run exits with the shell's status for the signal, ``128 + signal number`` (130 for
SIGINT, 143 for SIGTERM), so schedulers can tell it from a finished run.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType


class RunStopped(Exception):
    """A run stopped by a signal after writing its checkpoint; ``str()`` says how to resume."""

    def __init__(self, signal_name: str, message: str) -> None:
        super().__init__(signal_name, message)  # both in args: it pickles to worker processes
        self.signal_name = signal_name
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def exit_status(self) -> int:
        """``128 + signal number``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + signal.Signals[self.signal_name].value


@contextlib.contextmanager
def exit_on_stop() -> Iterator[None]:
    """Turn :class:`RunStopped` into its message on stdout and the signal's exit status."""
    try:
        yield
    except RunStopped as stop:
        print(stop, flush=True)
        sys.exit(stop.exit_status)


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a flag the training loop polls."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        print(
            f"\n{self.requested} received: stopping after this epoch and writing a checkpoint "
            "(press Ctrl-C again to abort at once)",
            flush=True,
        )

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
