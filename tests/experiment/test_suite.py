"""Benchmark suites: expansion into groups, run status, commands, the recorded environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.experiment.suite import (
    Group,
    Run,
    code_revision,
    groups_of,
    installed_versions,
    record_environment,
    run_status,
    status_table,
    version_difference,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

SUITE = {
    "name": "tiny",
    "out": "results/tiny",
    "recipe": "ppo_softswitch.py",
    "total_steps": 1000,
    "tasks": ["A-v1", "B-v1"],
    "overrides": ["steps_per_epoch=500"],
    "groups": [
        {"strategies": ["reward_only"], "seeds": [0]},
        {
            "strategies": ["soft_switch", "lagrangian"],
            "seeds": [0, 1],
            "tasks": ["B-v1"],
            "total_steps": 2000,
            "overrides": ["eval_episodes=1"],
        },
    ],
}


def test_groups_inherit_the_suite_settings_and_order_runs_seed_major():
    first, second = groups_of(SUITE)
    assert first.runs() == [
        Run("A-v1", "ppo", "reward_only", 0, 1000),
        Run("B-v1", "ppo", "reward_only", 0, 1000),
    ]
    assert second.overrides == ["steps_per_epoch=500", "eval_episodes=1"]
    assert [(r.seed, r.strategy) for r in second.runs()] == [
        (0, "soft_switch"),
        (0, "lagrangian"),
        (1, "soft_switch"),
        (1, "lagrangian"),
    ]
    assert second.runs()[0].directory(Path("out")) == Path("out/B-v1/ppo-soft_switch/seed0")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"groups": []}, "suite.groups must list"),
        ({"groups": [{"strategies": "soft_switch", "seeds": [0]}]}, "strategies must be a"),
        ({"groups": [{"strategies": ["x"], "seeds": [0.5]}]}, "seeds must be an integer"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"tasks": []}, "tasks must be a non-empty list"),
    ],
)
def test_bad_suites_are_refused_with_the_field_named(change, message):
    with pytest.raises(ConfigError, match=message):
        groups_of({**SUITE, **change})


def test_group_command_is_a_resumable_multirun_into_fixed_directories(tmp_path):
    group = Group(["A-v1"], ["soft_switch", "lagrangian"], [0, 1, 2], 5000, "trpo", ["x=1"])
    command = group.command(Path("recipe.py"), tmp_path, "local_parallel", 3)
    assert command[1:4] == ["recipe.py", "-m", "hydra/launcher=local_parallel"]
    for item in (
        "hydra.launcher.n_jobs=3",
        f"hydra.sweep.dir={tmp_path}",
        "seed=0,1,2",
        "env=A-v1",
        "strategy=soft_switch,lagrangian",
        "algo=trpo",
        "total_steps=5000",
        "resume=true",
    ):
        assert item in command, item
    assert command[-1] == "x=1"
    assert "+hydra.launcher.ray.init.num_cpus=4" in group.command(Path("r"), tmp_path, "ray", 4)
    assert not any("launcher" in c for c in group.command(Path("r"), tmp_path, "basic", 4))


def test_run_status_and_table(tmp_path):
    first = groups_of(SUITE)[0].runs()[0]
    assert run_status(first.directory(tmp_path)) == "pending"
    first.directory(tmp_path).mkdir(parents=True)
    (first.directory(tmp_path) / "metrics.csv").write_text("epoch\n1\n")
    assert run_status(first.directory(tmp_path)) == "partial"
    (first.directory(tmp_path) / "summary.json").write_text("{}")
    states = [state for _, state in status_table(groups_of(SUITE), tmp_path)]
    assert states == ["done"] + ["pending"] * 5


def test_environment_record_refuses_mixing_versions_or_revisions(tmp_path):
    root = Path(__file__).resolve().parents[2]
    record_environment(tmp_path, SUITE, root)
    versions = (tmp_path / "versions.txt").read_text().splitlines()
    assert versions == installed_versions()
    assert any(line.startswith("torch==") for line in versions)
    assert not any(line.lower().startswith("gradmanip==") for line in versions)
    info = json.loads((tmp_path / "suite.json").read_text())
    assert info["revision"] == code_revision(root) and info["suite"]["name"] == "tiny"
    record_environment(tmp_path, SUITE, root)  # same environment: accepted
    (tmp_path / "versions.txt").write_text("\n".join(reversed(versions)))
    record_environment(tmp_path, SUITE, root)  # the same pins in another layout: accepted
    assert (tmp_path / "versions.txt").read_text().splitlines() == versions
    (tmp_path / "versions.txt").write_text("torch==0.0.1\n")
    with pytest.raises(ConfigError, match="other package versions"):
        record_environment(tmp_path, SUITE, root)
    torch_pin = next(line for line in versions if line.startswith("torch=="))
    (tmp_path / "versions.txt").write_text("\n".join(v for v in versions if v != torch_pin))
    with pytest.raises(ConfigError, match=r"installed but not recorded: torch \(`pip uninstall"):
        record_environment(tmp_path, SUITE, root)
    (tmp_path / "versions.txt").write_text("\n".join(versions) + "\n")
    (tmp_path / "suite.json").write_text(json.dumps({"revision": "0" * 40}))
    with pytest.raises(ConfigError, match="code revision"):
        record_environment(tmp_path, SUITE, root)


def test_version_difference_names_each_kind_with_its_remedy():
    recorded = "Foo==1.0\nbar==2.0\nbaz==3.0\n"
    installed = "foo==1.1\nbar==2.0\nQux==0.1\n"
    assert version_difference(recorded, installed, Path("v.txt")) == (
        "Foo 1.0 recorded, 1.1 installed (`pip install -c v.txt Foo`); "
        "installed but not recorded: Qux (`pip uninstall Qux`); "
        "recorded but not installed: baz==3.0 (`pip install baz==3.0`)"
    )
    assert version_difference(recorded, recorded, Path("v.txt")) == ""


def test_velocity_suite_config_is_the_benchmark():
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        cfg = compose("suite", overrides=["suite=velocity"])
    groups = groups_of(cfg.suite)
    runs = [run for group in groups for run in group.runs()]
    assert len({run.task for run in runs}) == 6
    assert all(run.total_steps == 500_000 for run in runs)
    assert sum(run.strategy == "reward_only" for run in runs) == 6
    assert {run.strategy for run in runs} == {
        "reward_only",
        "soft_switch",
        "hard_switch",
        "lagrangian",
    }
    assert len(runs) == 6 + 6 * 3 * 3


@pytest.mark.slow
def test_suite_runs_skips_finished_runs_and_resumes_partial_ones(tmp_path):
    """A two-run suite on the toy task through the real command line: run, status, rerun."""
    import os
    import subprocess
    import sys

    from gradmanip.reporting import read_metrics

    def learning_columns(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]

    out = tmp_path / "suite"
    overrides = [
        "suite.name=toy",
        f"suite.out={out}",
        "suite.total_steps=1000",
        "suite.tasks=[SafetyPointVelocity-v0]",
        "suite.overrides=['steps_per_epoch=500','eval_episodes=1','checkpoint_every=1']",
        "suite.groups=[{strategies:[reward_only,soft_switch],seeds:[0]}]",
        "launcher=basic",
    ]

    def suite(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(RECIPES / "suite.py"), *overrides, *extra],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(RECIPES.parent)},  # this checkout's package
        )

    pending = suite("action=status")
    assert pending.returncode == 0 and "2 runs, 0 done, 0 partial, 2 pending" in pending.stdout
    first = suite()
    assert first.returncode == 0, first.stdout + first.stderr
    runs = [
        out / "SafetyPointVelocity-v0" / f"ppo-{s}" / "seed0"
        for s in ("reward_only", "soft_switch")
    ]
    assert all((run / "summary.json").exists() for run in runs)
    assert (out / "versions.txt").exists() and (out / "suite.json").exists()
    # a partial run (interrupted before its first checkpoint: one row, no summary) is run
    # again and ends as before; the finished one is left alone
    finished = (runs[0] / "metrics.csv").read_bytes()
    learned = [learning_columns(read_metrics(run)) for run in runs]
    (runs[1] / "summary.json").unlink()
    (runs[1] / "checkpoints" / "last.pt").unlink()
    rows = (runs[1] / "metrics.csv").read_bytes()
    (runs[1] / "metrics.csv").write_bytes(rows[: rows.rstrip(b"\n").rfind(b"\n") + 1])
    assert "1 done, 1 partial, 0 pending" in suite("action=status").stdout
    second = suite()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "holds a finished run" in second.stdout
    assert (runs[0] / "metrics.csv").read_bytes() == finished
    assert learning_columns(read_metrics(runs[1])) == learned[1]
    assert (runs[1] / "summary.json").exists()
    assert "2 done" in suite("action=status").stdout
    bad = suite("launcher=slurm")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: launcher must be one of")
