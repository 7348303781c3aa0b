"""Running the recipes in the tests: tiny budgets on the toy task, through the real command line
or Hydra's compose API, and the comparison of runs that must agree cell for cell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from gradmanip.reporting import read_metrics

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = [
    "env=SafetyPointVelocity-v0",
    "steps_per_epoch=500",
    "eval_episodes=1",
    "progress=false",
]


def run_recipe(script: str, run_dir: Path, *overrides: str, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, str(RECIPES / script), *TINY, *overrides, f"hydra.run.dir={run_dir}"]
    # PYTHONPATH: this checkout's package, whatever is installed
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(RECIPES.parent)}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kwargs
    )


def finish(proc: subprocess.Popen, timeout: float = 240, status: int = 0) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == status, out
    return out


def sigkill_then_resume(root: Path, budget: list[str], wait: float) -> Path:
    """Run the main recipe with ``budget`` twice side by side, in ``root / "whole"`` and
    ``root / "killed"``; SIGKILL the second once it has a checkpoint and two epochs (within
    ``wait`` seconds), resume it, let both finish. Returns ``root / "killed"``."""
    whole = run_recipe("ppo_softswitch.py", root / "whole", *budget)  # runs alongside
    killed = root / "killed"
    proc = run_recipe("ppo_softswitch.py", killed, *budget)
    deadline = time.time() + wait
    while time.time() < deadline:
        if (killed / "checkpoints" / "last.pt").exists() and len(read_metrics(killed)) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_metrics(killed)) < 4, "the run finished before it could be killed"
    out = finish(run_recipe("ppo_softswitch.py", killed, *budget, "resume=true"))
    assert "resumed" in out
    finish(whole)
    return killed


def csv_cells_without_timings(path: Path) -> list[list[bytes]]:
    """The raw text of every cell of a CSV file, except the wall-clock ``time/*`` columns."""
    lines = [line.split(b",") for line in path.read_bytes().split(b"\n")]
    keep = [i for i, name in enumerate(lines[0]) if not name.startswith(b"time/")]
    return [[cells[i] for i in keep] if len(cells) > 1 else cells for cells in lines]


def learning_columns(rows: list[dict]) -> list[dict]:
    """Everything but wall-clock timings, which legitimately differ between runs."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def compose_cfg(*overrides: str, config: str = "ppo_softswitch"):
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        return compose(config, overrides=[*TINY, *overrides])
