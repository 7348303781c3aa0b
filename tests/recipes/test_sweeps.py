"""Hydra multirun sweeps of the main recipe: parallel jobs on local cores and on Ray.

Each sweep runs two tiny jobs on the cheap toy task through the real command line, then the
comparison command aggregates the run directories it produced.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gradmanip.reporting import read_run_info
from gradmanip.reporting.compare import compare_runs, find_runs

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "ppo_softswitch.py"
TASK = "SafetyPointVelocity-v0"
TINY = [
    f"env={TASK}",
    "total_steps=1000",
    "steps_per_epoch=1000",
    "eval_episodes=1",
    "progress=false",
]

CHECKOUT = {"PYTHONPATH": str(RECIPE.parents[1])}  # this checkout's package, whatever is installed


def sweep(sweep_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> str:
    """Run ``ppo_softswitch.py -m`` into ``sweep_dir``; returns its output, fails on errors."""
    cmd = [sys.executable, str(RECIPE), "-m", *TINY, *overrides, f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(
        cmd,
        cwd=sweep_dir.parent,
        env={**os.environ, **CHECKOUT, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


@pytest.mark.slow
def test_config_error_in_a_parallel_sweep_is_status_2_without_traceback(tmp_path: Path) -> None:
    cmd = [sys.executable, str(RECIPE), "-m", *TINY, "hydra/launcher=local_parallel"]
    cmd += ["seed=0,1", "total_steps=0", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | CHECKOUT
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: total_steps must be an integer >= 1, got 0" in proc.stderr.splitlines()


def job_span(run_dir: Path) -> tuple[float, float]:
    """(start, end) of a job: Hydra writes the job's config first, the recipe its summary last."""
    start = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    end = (run_dir / "summary.json").stat().st_mtime
    return start, end


@pytest.mark.slow
def test_local_parallel_sweep_runs_jobs_at_once_and_aggregates(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep(sweep_dir, "hydra/launcher=local_parallel", "seed=3", "strategy=soft_switch,lagrangian")

    runs = find_runs([sweep_dir])
    assert [run.relative_to(sweep_dir).as_posix() for run in runs] == [
        f"{TASK}/ppo-lagrangian/seed3",
        f"{TASK}/ppo-soft_switch/seed3",
    ]
    assert [(read_run_info(r)["strategy"], read_run_info(r)["seed"]) for r in runs] == [
        ("lagrangian", 3),
        ("soft_switch", 3),
    ]
    # Both jobs were running at the same time: each started before the other one finished.
    (start_a, end_a), (start_b, end_b) = map(job_span, runs)
    assert max(start_a, start_b) < min(end_a, end_b)

    out = tmp_path / "comparison"
    printed = subprocess.run(
        [sys.executable, "-m", "gradmanip.reporting.compare", str(sweep_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    with (out / "comparison.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["env"], r["algo"], r["strategy"], r["seeds"]) for r in table] == [
        (TASK, "ppo", "lagrangian", "1"),
        (TASK, "ppo", "soft_switch", "1"),
    ]
    assert f"| {TASK} | ppo | soft_switch | 1 |" in printed
    assert (out / "comparison.md").read_text() in printed
    assert (out / "comparison.png").stat().st_size > 0


def ray_processes(temp_dir: Path) -> list[int]:
    """Ids of live processes whose command line names the Ray session directory."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(temp_dir).encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended while being read
            continue
    return pids


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray instance at a time (pytest -n with --dist loadgroup)
def test_ray_sweep_runs_jobs_as_ray_tasks_and_aggregates(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray sweeps need the 'ray' extra: pip install -e .[ray]")
    sweep_dir = tmp_path / "sweep"
    # Ray's unix sockets live below its temp dir, whose path must stay short.
    ray_temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        printed = sweep(
            sweep_dir,
            "hydra/launcher=ray",
            "hydra.launcher.ray.init.address=local",  # a new instance even if one runs here
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
            f"+hydra.launcher.ray.init._temp_dir={ray_temp}",
            "seed=0,1",
            env={"RAY_USAGE_STATS_ENABLED": "0"},
        )
        # The local instance was shut down with the sweep.
        if Path("/proc").is_dir():
            assert ray_processes(ray_temp) == []
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert "Started a local Ray instance" in printed
    assert printed.count("(_run_job pid=") >= 2  # job output forwarded from Ray workers

    runs = find_runs([sweep_dir])
    assert [run.relative_to(sweep_dir).as_posix() for run in runs] == [
        f"{TASK}/ppo-soft_switch/seed0",
        f"{TASK}/ppo-soft_switch/seed1",
    ]
    (start_a, end_a), (start_b, end_b) = map(job_span, runs)  # two CPUs: both at once
    assert max(start_a, start_b) < min(end_a, end_b)
    table = compare_runs([sweep_dir], tmp_path / "comparison")
    assert [(r["env"], r["algo"], r["strategy"], r["seeds"]) for r in table] == [
        (TASK, "ppo", "soft_switch", 2)
    ]
