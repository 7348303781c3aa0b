"""End-to-end runs of the recipes with tiny budgets on the cheap toy task.

Runs go through the real command line (a subprocess) where the process matters (signals,
SIGKILL and resume, Hydra's own errors) and through Hydra's compose API where it does not.
"""

from __future__ import annotations

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
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.reporting import read_metrics, read_run_info

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = [
    "env=SafetyPointVelocity-v0",
    "steps_per_epoch=500",
    "eval_episodes=1",
    "progress=false",
]
sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402


def run_recipe(script: str, run_dir: Path, *overrides: str, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, str(RECIPES / script), *TINY, *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kwargs
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def learning_columns(rows: list[dict]) -> list[dict]:
    """Everything but wall-clock timings, which legitimately differ between runs."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def compose_cfg(*overrides: str, config: str = "ppo_softswitch"):
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        return compose(config, overrides=[*TINY, *overrides])


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
    budget = ["total_steps=2000", "checkpoint_every=1", "strategy=lagrangian"]
    whole = run_recipe("ppo_softswitch.py", tmp_path / "whole", *budget)  # runs alongside
    killed = tmp_path / "killed"
    proc = run_recipe("ppo_softswitch.py", killed, *budget)
    deadline = time.time() + 180
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
    assert same(
        learning_columns(read_metrics(killed)), learning_columns(read_metrics(tmp_path / "whole"))
    )


def test_sigterm_checkpoints_and_resume_continues(tmp_path):
    proc = run_recipe("ppo_softswitch.py", tmp_path, "total_steps=500000", "checkpoint_every=1000")
    deadline = time.time() + 180
    while time.time() < deadline and not (tmp_path / "metrics.csv").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc)
    assert "SIGTERM received" in out and "resume=true" in out
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
    ],
)
def test_bad_settings_fail_before_training(tmp_path, override, message):
    cfg = compose_cfg(*override.split())
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


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
        assert cfg.env.upper_slack >= 0 >= cfg.env.lower_slack


def test_every_strategy_config_instantiates():
    from hydra.utils import instantiate

    from gradmanip.strategies import available_strategies, strategy_class

    configs = {p.stem for p in (RECIPES / "config" / "strategy").glob("*.yaml")}
    built_in = {
        n for n in available_strategies() if strategy_class(n).__module__.startswith("gradmanip.")
    }  # other tests may register strategies of their own
    assert configs == built_in
    for name in configs:
        strategy = instantiate(compose_cfg(f"strategy={name}").strategy)
        assert strategy.name == name
