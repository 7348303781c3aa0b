"""Mean and spread over seeds of a per-epoch metric, against environment steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def mean_curve(
    runs: Sequence[Sequence[Mapping[str, Any]]], key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean and standard deviation of ``key`` over ``runs`` (each a list of epochs).

    The steps are those of any run up to where the shortest run ends; each run is interpolated
    linearly onto them. Runs without epochs are left out.
    """
    runs = [rows for rows in runs if rows]
    if not runs:
        empty = np.array([], dtype=float)
        return empty, empty, empty
    grid = np.array(sorted({r["env_steps"] for rows in runs for r in rows}), dtype=float)
    grid = grid[grid <= min(max(r["env_steps"] for r in rows) for rows in runs)]
    ys = np.stack(
        [np.interp(grid, [r["env_steps"] for r in rows], [r[key] for r in rows]) for rows in runs]
    )
    return grid, ys.mean(0), ys.std(0)
