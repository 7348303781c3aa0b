"""Shared by the suite-config tests: a suite's runs, and its status action run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from gradmanip.experiment.suite import groups_of

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def suite_runs(name: str) -> list:
    """Every run of ``suite=<name>``, in the order the suite starts them."""
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        cfg = compose("suite", overrides=[f"suite={name}"])
    return [run for group in groups_of(cfg.suite) for run in group.runs()]


def suite_status(name: str, out: Path) -> subprocess.CompletedProcess:
    """``python recipes/suite.py suite=<name> suite.out=<out> action=status``."""
    return subprocess.run(
        [
            sys.executable,
            str(RECIPES / "suite.py"),
            f"suite={name}",
            f"suite.out={out}",
            "action=status",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
