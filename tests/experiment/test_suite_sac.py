"""The SAC suites' configs: what they run, and that the status action lists every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gradmanip.experiment.suite import groups_of

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TASKS = {"SafetyHopperVelocity-v1", "SafetyWalker2dVelocity-v1"}


def suite_runs(name: str) -> list:
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        cfg = compose("suite", overrides=[f"suite={name}"])
    return [run for group in groups_of(cfg.suite) for run in group.runs()]


@pytest.mark.parametrize(
    ("name", "strategies"),
    [("sac", {"soft_switch", "lagrangian", "hard_switch"}), ("sac_reference", {"reward_only"})],
)
def test_sac_suite_config(name: str, strategies: set[str]) -> None:
    runs = suite_runs(name)
    assert {run.task for run in runs} == TASKS
    assert all(run.algo == "sac" and run.total_steps == 300_000 for run in runs)
    assert {run.strategy for run in runs} == strategies
    assert {run.seed for run in runs} == {0, 1, 2}
    assert len(runs) == len(TASKS) * len(strategies) * 3
    first = len(TASKS) * len(strategies)
    assert {run.seed for run in runs[:first]} == {0}  # seed 0 of every cell runs first


def test_sac_reference_status_lists_every_run(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(RECIPES / "suite.py"),
            "suite=sac_reference",
            f"suite.out={tmp_path / 'out'}",
            "action=status",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "6 runs, 0 done, 0 partial, 6 pending" in result.stdout
    assert "SafetyWalker2dVelocity-v1/sac-reward_only/seed2" in result.stdout
    assert not (tmp_path / "out").exists()  # status starts nothing
