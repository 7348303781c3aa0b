"""Run directories as records: description, per-epoch metrics, final summary, constraints.

A run directory holds ``run.json`` and ``metrics.csv``, and ``summary.json`` once the run has
finished. With one constraint, ``metrics.csv`` has its episodic cost in ``episode_cost``; with
K > 1, constraint k's is ``episode_cost_k`` (k = 0 .. K-1) and ``episode_cost`` is their sum.
``cost_limit`` in ``run.json`` is then one number (the same for every constraint) or a list of K.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gradmanip.reporting.metrics_file import (
    METRICS_NAME,
    RUN_INFO_NAME,
    read_metrics,
    read_run_info,
)

SUMMARY_NAME = "summary.json"
SUITE_INFO_NAME = "suite.json"
"""A suite's record of its code revision, in the suite's output directory above its runs."""
HYDRA_CONFIG = Path(".hydra") / "config.yaml"


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories at or below each path, sorted."""
    paths = list(paths)
    runs: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        for info in [p / RUN_INFO_NAME, *p.rglob(RUN_INFO_NAME)]:
            if info.exists() and (info.parent / METRICS_NAME).exists():
                runs.add(info.parent)
    if not runs:
        raise FileNotFoundError(
            f"no run directories (with {RUN_INFO_NAME} and {METRICS_NAME}) "
            f"under {[str(p) for p in paths]}"
        )
    return sorted(runs)


def cost_keys(columns: Iterable[str]) -> list[str]:
    """The metrics columns of the K constraints' episodic costs, in constraint order:
    ``episode_cost_0``, ``episode_cost_1``, ... when present, else ``episode_cost`` (K = 1)."""
    columns = set(columns)
    keys = []
    while f"episode_cost_{len(keys)}" in columns:
        keys.append(f"episode_cost_{len(keys)}")
    if not keys and "episode_cost" in columns:
        keys = ["episode_cost"]
    return keys


def constraint_names(name: str, k: int) -> list[str]:
    """The columns of constraint 0 .. K-1's values of ``name`` as the runs log them (the rule
    of :mod:`gradmanip.rl.metric_names`): ``[name]`` for K = 1, ``[name_0, ...]`` for K > 1."""
    return [name] if k == 1 else [f"{name}_{i}" for i in range(k)]


def cost_limits(value: Any, k: int) -> list[float]:
    """The K per-episode limits from ``run.json``'s ``cost_limit`` (a number is every limit)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = json.loads(value)
    if value is None:
        return [math.nan] * k
    if isinstance(value, Sequence) and not isinstance(value, str):
        limits = [float(v) for v in value]
        if len(limits) != k:
            raise ValueError(f"cost_limit lists {len(limits)} limits for {k} constraints")
        return limits
    return [float(value)] * k


@dataclass(frozen=True)
class RunRecord:
    """One run directory: ``info`` (run.json), ``rows`` (the epochs in which an episode finished,
    so reward and costs are numbers), ``summary`` (summary.json, empty while unfinished) and
    ``evaluations`` (the epochs with a deterministic evaluation, ``eval_every`` > 0) and
    ``revision`` (the code revision of the suite the run belongs to, if any)."""

    path: Path
    info: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]
    summary: Mapping[str, Any]
    cost_keys: Sequence[str]
    evaluations: Sequence[Mapping[str, Any]] = ()
    revision: str | None = None

    @property
    def env(self) -> str:
        return str(self.info.get("env", "?"))

    @property
    def algo(self) -> str:
        return str(self.info.get("algo", "?"))

    @property
    def strategy(self) -> str:
        return str(self.info.get("strategy", "?"))

    @property
    def seed(self) -> Any:
        return self.info.get("seed")

    @property
    def finished(self) -> bool:
        return bool(self.summary)

    @property
    def limits(self) -> list[float]:
        """One cost limit per constraint."""
        return cost_limits(self.info.get("cost_limit"), len(self.cost_keys))


def load_run(path: str | os.PathLike) -> RunRecord:
    """Read one run directory."""
    path = Path(path)
    all_rows = read_metrics(path)
    keys = cost_keys(all_rows[0]) if all_rows else []
    rows = [r for r in all_rows if all(_finite(r.get(k)) for k in ("episode_return", *keys))]
    summary_path = path / SUMMARY_NAME
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    evaluations = [r for r in all_rows if _finite(r.get("eval/return"))]
    info = _with_config(path, read_run_info(path))
    return RunRecord(path, info, rows, summary, keys, evaluations, suite_revision(path))


def suite_revision(path: str | os.PathLike) -> str | None:
    """The code revision recorded in the ``suite.json`` nearest above ``path``, if any."""
    for parent in Path(path).resolve().parents:
        info = parent / SUITE_INFO_NAME
        if info.exists():
            revision = json.loads(info.read_text()).get("revision")
            return str(revision) if revision else None
    return None


def _with_config(path: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with the run's configuration: from run.json, or else from the Hydra record
    ``.hydra/config.yaml`` (interpolations left as written), so that runs whose run.json predates
    the recorded configuration still group by their settings."""
    hydra_config = path / HYDRA_CONFIG
    if "config" in info or not hydra_config.exists():
        return info
    config = OmegaConf.to_container(OmegaConf.load(hydra_config), resolve=False)
    return {**info, "config": config}


def load_runs(paths: Iterable[str | os.PathLike]) -> list[RunRecord]:
    """Every run directory at or below ``paths`` that has logged an epoch."""
    runs = [load_run(p) for p in find_runs(paths)]
    return [run for run in runs if run.cost_keys]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
