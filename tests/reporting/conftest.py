"""Synthetic run directories: run.json, metrics.csv and, for finished runs, summary.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gradmanip.reporting import MetricsFile, write_run_info

TASK = "SafetyHopperVelocity-v1"


def config(strategy: str = "soft_switch", seed: int = 0, **top: Any) -> dict[str, Any]:
    """A resolved recipe configuration (abridged) as the recipes record it in run.json."""
    cfg = {
        "env": {"id": TASK, "cost_limit": 25.0, "upper_slack": 9.0, "lower_slack": -9.0},
        "algo": {"name": "ppo", "base": {"lr": 3e-4, "seed": seed}, "gamma": 0.99},
        "strategy": {"_target_": f"gradmanip.strategies.{strategy}", "cost_limit": 25.0},
        "logger": {"backends": ["csv"]},
        "seed": seed,
        "total_steps": 1000,
        "steps_per_epoch": 100,
        "num_workers": 1,
        "hidden": [64, 64],
        "resume": False,
        "progress": True,
        "eval_episodes": 5,
    }
    for key, value in top.items():
        cfg[key] = value
    return cfg


def write_run(
    path: Path,
    returns: Sequence[float],
    costs: Sequence[float] | Sequence[Sequence[float]],
    *,
    task: str = TASK,
    strategy: str = "soft_switch",
    algo: str = "ppo",
    seed: int = 0,
    limit: float | list[float] = 25.0,
    steps_per_epoch: int = 100,
    cfg: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
) -> Path:
    """A run directory; ``costs`` holds one number per epoch, or K numbers per epoch."""
    info: dict[str, Any] = {
        "env": task,
        "algo": algo,
        "strategy": strategy,
        "seed": seed,
        "cost_limit": limit,
        "slack_upper": 9.0,
        "slack_lower": -9.0,
        "total_steps": steps_per_epoch * len(returns),
        "steps_per_epoch": steps_per_epoch,
    }
    if cfg is not None:
        info["config"] = cfg
    write_run_info(path, info)
    log = MetricsFile(path)
    for epoch, (r, c) in enumerate(zip(returns, costs, strict=True), start=1):
        row = {"epoch": epoch, "env_steps": epoch * steps_per_epoch, "episode_return": r}
        values = list(c) if isinstance(c, Sequence) else [c]
        row["episode_cost"] = sum(values)  # with K > 1 the total, as the recipes log it
        if len(values) > 1:
            row |= {f"episode_cost_{k}": value for k, value in enumerate(values)}
        log.write(row)
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


@pytest.fixture(name="write_run")
def write_run_fixture():
    """``write_run(path, returns, costs, **fields)`` -> a synthetic run directory."""
    return write_run


@pytest.fixture(name="run_config")
def run_config_fixture():
    """``run_config(strategy, seed, **top_level)`` -> a resolved configuration for run.json."""
    return config
