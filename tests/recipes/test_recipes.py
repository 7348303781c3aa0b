"""End-to-end runs of the recipes with tiny budgets on the cheap toy task.

Runs go through the real command line (a subprocess) where the process matters (signals,
SIGKILL and resume, Hydra's own errors) and through Hydra's compose API where it does not.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf
from recipe_runs import (
    RECIPES,
    TINY,
    compose_cfg,
    csv_cells_without_timings,
    finish,
    learning_columns,
    run_recipe,
    sigkill_then_resume,
)

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.experiment.stop_signals import RunStopped
from gradmanip.reporting import read_metrics, read_run_info

sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402


def run_cli(*args: str, full_error: bool = False, cwd: Path | None = None):
    """The main recipe's command line with ``args``; stdout and stderr kept apart."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(RECIPES.parent)  # this checkout's package, whatever is installed
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    return subprocess.run(
        [sys.executable, str(RECIPES / "ppo_softswitch.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
    )


def same(a: list[dict], b: list[dict]) -> bool:
    def eq(x, y):
        return (
            isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        ) or x == y

    return len(a) == len(b) and all(
        r.keys() == s.keys() and all(eq(r[k], s[k]) for k in r) for r, s in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("collector", ["auto", "torchrl"])
def test_main_recipe_writes_every_output(tmp_path, collector):
    out = finish(
        run_recipe("ppo_softswitch.py", tmp_path, "total_steps=1500", f"collector={collector}")
    )
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["env_steps"] for r in rows] == [500, 1000, 1500]
    for column in ("episode_return", "episode_cost", "loss/reward", "strategy/mode", "kl"):
        assert all(math.isfinite(r[column]) for r in rows), column
    info = read_run_info(tmp_path)
    assert (info["env"], info["algo"], info["strategy"]) == (
        "SafetyPointVelocity-v0",
        "ppo",
        "soft_switch",
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["env_steps"] == 1500
    assert summary["eval/length"] == 100  # the toy task's episodes
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] == 3
    assert "final_episode_cost" in out and "soft_switch" in out
    empty = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert empty == []  # e.g. no empty log file of Hydra's


def test_paper_recipe_runs_natural_gradient_with_warmup(tmp_path):
    finish(
        run_recipe(
            "pcrpo_paper.py",
            tmp_path,
            "total_steps=1500",
            "safety_start_epoch=2",
            "checkpoint_every=1",
        )
    )
    rows = read_metrics(tmp_path)
    info = read_run_info(tmp_path)
    assert (info["algo"], info["strategy"]) == ("trpo", "soft_switch")
    assert [r["strategy/safety_active"] for r in rows] == [0.0, 0.0, 1.0]
    assert rows[0]["strategy/mode"] == 1.0  # reward only during the warm-up
    assert all(r["kl"] <= 0.05 * 1.5 + 1e-6 for r in rows)


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    budget = ["total_steps=2000", "checkpoint_every=1", "strategy=lagrangian", "eval_every=2"]
    killed = sigkill_then_resume(tmp_path, budget, wait=180)
    assert same(
        learning_columns(read_metrics(killed)), learning_columns(read_metrics(tmp_path / "whole"))
    )
    # the file itself: every cell's text but the wall-clock timings, byte for byte
    cells = csv_cells_without_timings(killed / "metrics.csv")
    assert len(cells) == 6  # header, 4 epochs, the final newline
    assert cells == csv_cells_without_timings(tmp_path / "whole" / "metrics.csv")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_exits_with_its_status_and_resume_continues(tmp_path, sig, status):
    proc = run_recipe("ppo_softswitch.py", tmp_path, "total_steps=500000", "checkpoint_every=1000")
    deadline = time.time() + 180
    while time.time() < deadline and not (tmp_path / "metrics.csv").exists():
        time.sleep(0.05)
    proc.send_signal(sig)
    out = finish(proc, status=status)  # a stop is not a success: 128 + the signal's number
    assert f"{sig.name} received" in out and "resume=true" in out
    epochs = read_metrics(tmp_path)[-1]["epoch"]
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] == epochs >= 1  # checkpoint written although checkpoint_every=1000
    out = finish(
        run_recipe(
            "ppo_softswitch.py", tmp_path, f"total_steps={500 * (epochs + 1)}", "resume=true"
        )
    )
    assert f"resumed {tmp_path} at epoch {epochs}" in out
    assert read_metrics(tmp_path)[-1]["epoch"] == epochs + 1


def test_stopped_run_raises_after_its_checkpoint(tmp_path, monkeypatch):
    original = ppo_softswitch.Trainer.run_epoch

    def stopping(self):
        metrics = original(self)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by the run: it stops after this epoch
        return metrics

    monkeypatch.setattr(ppo_softswitch.Trainer, "run_epoch", stopping)
    with pytest.raises(RunStopped, match="stopped by SIGTERM at epoch 1") as stop:
        ppo_softswitch.train(compose_cfg("total_steps=5000"), tmp_path)
    assert stop.value.exit_status == 143
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 1


def test_existing_run_directory_needs_resume(tmp_path):
    cfg = compose_cfg("total_steps=500")
    ppo_softswitch.train(cfg, tmp_path)
    with pytest.raises(ConfigError, match="resume=true"):
        ppo_softswitch.train(cfg, tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env.cost_limit=-1", "env.cost_limit must be a finite number >= 0"),
        ("env.upper_slack=-1", r"strategy: upper_slack \(h\+\) must be >= 0"),
        ("env.lower_slack=2", r"strategy: lower_slack \(h-\) must be <= 0"),
        ("total_steps=100", r"total_steps \(100\) is smaller than one epoch"),
        ("num_workers=3", r"must be a multiple of num_workers"),
        ("algo.base.lr=-1", "algo.base: .*lr"),
        ("algo.gamma=1.5", r"algo.gamma must lie in \[0, 1\]"),
        ("seed=-1", "seed must be an integer >= 0"),
        ("collector=fast", "collector must be one of auto, lean, torchrl"),
        ("obs_clip=0", "obs_clip must be a number > 0"),
        ("collector=lean num_workers=2", "collector=lean steps one environment"),
        ("total_steps=0", r"total_steps must be an integer >= 1, got 0$"),
        ("total_steps=1.5", r"total_steps must be an integer >= 1, got 1.5$"),
        ("steps_per_epoch=2.5", r"steps_per_epoch must be an integer >= 1, got 2.5"),
        (
            "algo.base.minibatch_size=501",
            r"algo.base.minibatch_size \(501\) is larger than the batch of one epoch "
            r"\(steps_per_epoch = 500\)",
        ),
        (
            "num_workers=2 envs_per_worker=2 algo.base.minibatch_size=1000",
            r"algo.base.minibatch_size \(1000\) .* \(steps_per_epoch = 500\)",
        ),
        (
            "algo=trpo algo.base.critic_batch_size=501",
            r"algo.base.critic_batch_size \(501\) .* \(steps_per_epoch = 500\)",
        ),
        (
            "+env.kwargs.speed=1.0",
            r"env.kwargs.speed is not a parameter of SafetyPointVelocity-v0; valid ones: "
            r"damping, initial_noise, max_episode_steps, speed_threshold$",
        ),
        ("+env.kwargs.damping=2.0", "env.kwargs: damping must be < 1"),
        ("+env.kwargs.max_episode_steps=0", "env.kwargs: max_episode_steps must be a positive"),
        (
            "algo.cost_window=0",
            r"algo.cost_window must be an integer >= 1, got 0 \(or null: J_c_hat from the "
            r"episodes of each epoch\)",
        ),
        ("algo=trpo algo.cost_window=2.5", r"algo.cost_window must be an integer >= 1, got 2.5"),
        ("resume=ture", r"resume must be true or false, got 'ture'"),
        ("hidden=64", r"hidden must be a non-empty list of positive widths, e.g. hidden=\[64,64\]"),
        ("hidden=[]", r"hidden must be a non-empty list of positive widths"),
        ("hidden=[64,0]", r"hidden must be a non-empty list of positive widths"),
        ("video=1", r"video must be true or false, got 1"),
        ("normalize_obs=yes", r"normalize_obs must be true or false, got 'yes'"),
        (
            "strategy=weighted_sum strategy.require_sum_to_one=maybe",
            r"strategy: require_sum_to_one must be true or false, got 'maybe'",
        ),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, override, message):
    cfg = compose_cfg(*override.split())
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_cost_window_setting_reaches_the_episode_tracker(tmp_path):
    cfg = compose_cfg("algo.cost_window=3", "total_steps=1000")  # 10 episodes of 100 steps
    ppo_softswitch.train(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert all(math.isfinite(r["cost_estimate"]) for r in rows)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["episodes"]["recent_costs"].shape == (3, 1)  # the toy's episodes fill it
    assert rows[-1]["cost_estimate"] == pytest.approx(
        state["episodes"]["recent_costs"].mean().item()
    )


def test_whole_floats_are_integers(tmp_path):
    # Hydra reads total_steps=1e3 as 1000.0: a whole float is that integer, everywhere.
    ppo_softswitch.train(compose_cfg("total_steps=1e3", "steps_per_epoch=5e2"), tmp_path)
    assert [r["env_steps"] for r in read_metrics(tmp_path)] == [500, 1000]
    info = read_run_info(tmp_path)
    assert (info["total_steps"], info["steps_per_epoch"]) == (1000, 500)
    with (tmp_path / "metrics.csv").open(newline="") as f:
        assert [row["env_steps"] for row in csv.DictReader(f)] == ["500", "1000"]


@pytest.mark.parametrize("override", ["env=SafetyHopperVelocity-v1", "env=SafetyWalker2d-v4"])
def test_task_parameters_of_the_mujoco_tasks_are_checked(tmp_path, override):
    cfg = compose_cfg(override, "+env.kwargs.speed=1.0")
    with pytest.raises(ConfigError, match=r"env.kwargs.speed is not a parameter of .*") as err:
        ppo_softswitch.train(cfg, tmp_path)
    valid = {
        "env=SafetyHopperVelocity-v1": "base_version, max_episode_steps, velocity_threshold",
        "env=SafetyWalker2d-v4": "ctrl_cost_weight, max_episode_steps",
    }[override]
    assert str(err.value).endswith(f"valid ones: {valid}")


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_missing_logger_package_fails_before_training(tmp_path, monkeypatch, backend):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == backend else find_spec(name, *a),
    )
    cfg = compose_cfg(f"logger={backend}", "total_steps=500")
    message = rf"'{backend}' needs the {backend} package.*pip install 'gradmanip\[{backend}\]'"
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(cfg, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_run_directory_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"hydra.run.dir: cannot write the run directory"):
        ppo_softswitch.train(compose_cfg("total_steps=500"), tmp_path / "file" / "run")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env.cost_limit=-5"], "env.cost_limit must be a finite number >= 0, got -5"),
        (["total_steps=0"], "total_steps must be an integer >= 1, got 0"),
        (["hydra.run.dir={file}/run"], "hydra.run.dir: cannot write the run directory {file}/run"),
    ],
)
def test_config_error_is_one_line_and_status_2(tmp_path, args, message):
    file = tmp_path / "file"  # a regular file: no directory can be made below it, even by root
    file.write_text("")
    args = [a.format(file=file) for a in args]
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    proc = run_cli(*TINY, *args)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {message.format(file=file)}")
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_default_run_directory_is_checked_too(tmp_path):
    # the default hydra.run.dir, runs/<env>/<algo>-<strategy>/seed<seed>, is a regular file
    run_dir = Path("runs", "SafetyPointVelocity-v0", "ppo-soft_switch", "seed0")
    (tmp_path / run_dir).parent.mkdir(parents=True)
    (tmp_path / run_dir).write_text("")
    proc = run_cli(*TINY, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: hydra.run.dir: cannot write the run directory {run_dir} (")


def test_config_error_traceback_with_hydra_full_error(tmp_path):
    proc = run_cli(*TINY, "env.cost_limit=-5", f"hydra.run.dir={tmp_path}", full_error=True)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().endswith(
        "ConfigError: env.cost_limit must be a finite number >= 0, got -5"
    )


def test_config_error_in_a_sweep_is_status_2_without_traceback(tmp_path):
    proc = run_cli("-m", *TINY, "seed=0,1", "total_steps=0", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: total_steps must be an integer >= 1, got 0"] * 2  # each job


@pytest.mark.parametrize("group", ["env", "strategy", "algo"])
def test_unknown_choice_lists_the_allowed_ones(group):
    expected = {"env": "SafetyHopperVelocity-v1", "strategy": "soft_switch", "algo": "trpo"}
    with pytest.raises(MissingConfigException) as err:
        compose_cfg(f"{group}=nope")
    assert f"Could not find '{group}/nope'" in str(err.value)
    assert f"Available options in '{group}'" in str(err.value)
    assert expected[group] in str(err.value)


def test_nonfinite_loss_stops_with_epoch_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = ppo_softswitch.Trainer.run_epoch

    def failing(self):
        if self.epoch == 2:
            raise FloatingPointError("non-finite reward direction")
        return original(self)

    monkeypatch.setattr(ppo_softswitch.Trainer, "run_epoch", failing)
    cfg = compose_cfg("total_steps=5000", "checkpoint_every=1")
    with pytest.raises(FloatingPointError, match=r"epoch 3 \(after 1000 environment steps\)"):
        ppo_softswitch.train(cfg, tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] == 2
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2]


def test_every_task_has_an_env_config_with_its_default_limit():
    import safe_envs

    configs = {p.stem for p in (RECIPES / "config" / "env").glob("*.yaml")}
    assert configs == set(safe_envs.available_ids())
    for env_id in configs:
        cfg = compose_cfg(f"env={env_id}")
        assert cfg.env.id == env_id
        assert cfg.env.cost_limit == safe_envs.default_cost_limit(env_id)
        limits = OmegaConf.to_container(cfg.env, resolve=True)
        count = len(limits["cost_limit"]) if isinstance(limits["cost_limit"], list) else 1
        for name, sign in (("upper_slack", 1), ("lower_slack", -1)):
            values = limits[name] if isinstance(limits[name], list) else [limits[name]]
            assert len(values) in (1, count) and all(sign * v >= 0 for v in values), name


def test_every_strategy_config_instantiates():
    from hydra.utils import instantiate

    from gradmanip.strategies import available_strategies, strategy_class

    configs = {p.stem for p in (RECIPES / "config" / "strategy").glob("*.yaml")}
    built_in = {
        n for n in available_strategies() if strategy_class(n).__module__.startswith("gradmanip.")
    }  # other tests may register strategies of their own
    assert built_in <= configs
    for name in configs:
        strategy = instantiate(compose_cfg(f"strategy={name}").strategy)
        # a variant (e.g. soft_switch_upgrad) is a registered strategy with other settings
        assert strategy.name == name or name.startswith(f"{strategy.name}_")
