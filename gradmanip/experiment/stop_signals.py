"""Graceful stop on SIGINT / SIGTERM.

The first signal asks the run to stop at the end of the current epoch (the caller then writes a
checkpoint and flushes its logs); a second SIGINT interrupts at once.
"""

from __future__ import annotations

import signal
from types import FrameType


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
