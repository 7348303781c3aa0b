"""Checkpoints that an interruption cannot corrupt.

A checkpoint is one ``torch.save`` file written to a temporary name, flushed to disk, then moved
over ``last.pt`` in one atomic rename: a run killed at any moment leaves either the previous
checkpoint or the new one, never half of one. Python's and NumPy's RNG states travel with it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

LAST = "last.pt"


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (plus Python/NumPy RNG states) to ``directory/last.pt``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LAST
    tmp = directory / f".{LAST}.tmp"
    payload = {**state, "python_rng": random.getstate(), "numpy_rng": np.random.get_state()}
    with tmp.open("wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any]:
    """Read ``directory/last.pt`` and restore Python/NumPy RNG states; returns the state."""
    path = Path(directory) / LAST
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}: resume needs a run directory that has written one "
            "(run with resume=false to start a new run)"
        )
    state = torch.load(path, weights_only=False)
    random.setstate(state.pop("python_rng"))
    np.random.set_state(state.pop("numpy_rng"))
    return state


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a checkpoint to resume from."""
    return (Path(directory) / LAST).exists()
