"""The recipes on tasks with K = 2 constraints: every strategy trains (on- and off-policy), shapes
[.., K] end to end, per-constraint metrics, run.json and summary.json, K mismatches fail before
any work, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from recipe_runs import learning_columns

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.experiment.stop_signals import RunStopped
from gradmanip.reporting import read_metrics, read_run_info
from tests.png_image import png_size

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TASK = "SafetyPointVelocityEffort-v0"
TINY = [f"env={TASK}", "steps_per_epoch=500", "eval_episodes=2", "progress=false"]
STRATEGIES = [
    "soft_switch",
    "hard_switch",
    "lagrangian",
    "pid_lagrangian",
    "pcgrad",
    "weighted_sum",
    "mgda",
    "reward_only",
]
sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402


def compose_cfg(*overrides: str, config: str = "ppo_softswitch"):
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        return compose(config, overrides=[*TINY, *overrides])


def check_two_constraint_outputs(run_dir: Path, epochs: int) -> list[dict]:
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    for row in rows:
        # per constraint episode_cost_k; episode_cost is their total
        assert row["episode_cost"] == pytest.approx(row["episode_cost_0"] + row["episode_cost_1"])
        assert "episode_cost_2" not in row
        assert "loss/cost" not in row and "strategy/cosine" not in row  # per constraint
    info = read_run_info(run_dir)
    assert info["num_costs"] == 2
    assert info["cost_limit"] == [10.0, 10.0]
    assert (info["slack_upper"], info["slack_lower"]) == ([0.0, 0.0], [-3.0, -3.0])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cost_limit"] == [10.0, 10.0]
    last = rows[-1]
    for name in ("episode_cost", "episode_cost_0", "episode_cost_1"):
        assert summary[f"final_{name}"] == last[name]
    assert summary["eval/cost"] == pytest.approx(summary["eval/cost_0"] + summary["eval/cost_1"])
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    cost_head = [v for k, v in state["networks"]["cost_critic"].items() if k.endswith("weight")]
    assert cost_head[-1].shape[0] == 2  # one cost-critic output per constraint
    assert state["episodes"]["episode_cost"].shape == (2,)
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    return rows


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_on_a_two_constraint_task(tmp_path, strategy):
    cfg = compose_cfg(f"strategy={strategy}", "total_steps=1000")
    summary = ppo_softswitch.train(cfg, tmp_path)
    rows = check_two_constraint_outputs(tmp_path, epochs=2)
    assert summary["epochs"] == 2
    assert all(math.isfinite(r["loss/cost_0"]) and math.isfinite(r["loss/cost_1"]) for r in rows)
    if strategy == "lagrangian":  # one multiplier per constraint
        assert {"strategy/lagrange_multiplier_0", "strategy/lagrange_multiplier_1"} <= set(rows[0])
    if strategy == "soft_switch":
        assert {"strategy/cosine_0", "strategy/cosine_1", "strategy/mode"} <= set(rows[0])


@pytest.mark.parametrize("overrides", [["algo=trpo"], ["collector=torchrl", "envs_per_worker=2"]])
def test_two_constraints_with_the_natural_gradient_and_torchrl_collection(tmp_path, overrides):
    ppo_softswitch.train(compose_cfg(*overrides, "total_steps=1000"), tmp_path)
    check_two_constraint_outputs(tmp_path, epochs=2)


@pytest.mark.slow
def test_two_constraints_with_the_off_policy_base(tmp_path):
    cfg = compose_cfg(
        "algo=sac", "strategy=soft_switch", "total_steps=1000", "algo.warmup_steps=200"
    )
    summary = ppo_softswitch.train(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2] and summary["epochs"] == 2
    for row in rows:  # the columns of the on-policy bases: name_k, and the total cost
        assert row["episode_cost"] == pytest.approx(row["episode_cost_0"] + row["episode_cost_1"])
        names = ("loss/cost", "cost_q_value", "strategy/cosine")
        assert all({f"{n}_0", f"{n}_1"} <= set(row) and n not in row for n in names)
    assert all(math.isfinite(rows[-1][f"loss/cost_{k}"]) for k in (0, 1))
    assert summary["final_episode_cost"] == rows[-1]["episode_cost"]
    assert summary["eval/cost"] == pytest.approx(summary["eval/cost_0"] + summary["eval/cost_1"])
    assert read_run_info(tmp_path)["cost_limit"] == [10.0, 10.0]
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    cost_critics = state["algo"]["loss_module"]["cost_qvalue_network_params.module.net.0.bias"]
    assert cost_critics.shape[0] == 2  # one cost critic per constraint
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_velocity_effort_task_trains(tmp_path):
    cfg = compose_cfg("env=SafetyHopperVelocityEffort-v1", "total_steps=500", "eval_episodes=1")
    ppo_softswitch.train(cfg, tmp_path)
    (row,) = read_metrics(tmp_path)
    assert row["episode_cost"] == pytest.approx(row["episode_cost_0"] + row["episode_cost_1"])
    assert read_run_info(tmp_path)["cost_limit"] == [25.0, 200.0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["env.cost_limit=25"],
            rf"env.cost_limit: {TASK} has 2 constraints; give one limit per constraint, "
            r"e.g. env.cost_limit=\[10,10\]$",
        ),
        (
            ["env.cost_limit=[25,200,3]"],
            rf"env.cost_limit lists 3 limits but {TASK} has 2 constraints; give 2 limits, one "
            r"per constraint, e.g. env.cost_limit=\[10,10\]$",
        ),
        (
            ["env=SafetyPointVelocity-v0", "env.cost_limit=[10,10]"],
            r"env.cost_limit lists 2 limits but SafetyPointVelocity-v0 has 1 constraint; give "
            r"one number, e.g. env.cost_limit=10$",
        ),
        (["env.cost_limit=[10,-1]"], r"env.cost_limit must be finite numbers >= 0"),
        (
            ["env.upper_slack=[0,0,0]"],
            rf"env.upper_slack lists 3 values but {TASK} has 2 constraints; give one number "
            r"shared by all or 2, one per constraint, e.g. env.upper_slack=\[0,0\]$",
        ),
        (
            ["env.lower_slack=[-3]", "env.upper_slack=[a,b]"],
            r"env.upper_slack must be a number or a list of numbers",
        ),
        (
            [
                "strategy=weighted_sum",
                "strategy.reward_weight=0.4",
                "strategy.cost_weight=[0.2,0.2,0.2]",
            ],
            rf"strategy: {TASK} has 2 constraints: 'cost_direction' carries 2 constraints but "
            r"WeightedSum was configured for 3; give its per-constraint settings one value per "
            r"constraint \(or a single float shared by all\)$",
        ),
        (
            ["strategy=hard_switch", "strategy.tolerance=[0,0,0]"],
            r"strategy: tolerance has 3 values but cost_limit has 2",
        ),
    ],
)
def test_constraint_count_mismatches_fail_before_training(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(compose_cfg(*overrides, "total_steps=500"), tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


@pytest.mark.slow
def test_mismatch_on_the_command_line_is_one_error_line(tmp_path):
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPES / "ppo_softswitch.py"),
            *TINY,
            "env=SafetyHopperVelocityEffort-v1",
            "env.cost_limit=25",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(RECIPES.parent)},  # this checkout's package
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: env.cost_limit: SafetyHopperVelocityEffort-v1 has 2 constraints; give one limit "
        "per constraint, e.g. env.cost_limit=[25,200]"
    ]


def test_stopped_two_constraint_run_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    budget = ["total_steps=2000", "checkpoint_every=1", "strategy=lagrangian"]
    ppo_softswitch.train(compose_cfg(*budget), tmp_path / "whole")
    original = ppo_softswitch.Trainer.run_epoch

    def stopping(self):
        metrics = original(self)
        if self.epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the run stops after this epoch
        return metrics

    monkeypatch.setattr(ppo_softswitch.Trainer, "run_epoch", stopping)
    with pytest.raises(RunStopped, match="at epoch 2"):
        ppo_softswitch.train(compose_cfg(*budget), tmp_path / "stopped")
    monkeypatch.undo()
    ppo_softswitch.train(compose_cfg(*budget, "resume=true"), tmp_path / "stopped")
    resumed = check_two_constraint_outputs(tmp_path / "stopped", epochs=4)
    whole = read_metrics(tmp_path / "whole")
    assert learning_columns(resumed) == learning_columns(whole)


@pytest.fixture(scope="module")
def two_constraint_runs(tmp_path_factory):
    """A soft-switching and a reward-only run of the recipe on the K = 2 toy task."""
    root = tmp_path_factory.mktemp("k2runs")
    for strategy in ("soft_switch", "reward_only"):
        cfg = compose_cfg(f"strategy={strategy}", "total_steps=1500")
        ppo_softswitch.train(cfg, root / TASK / f"ppo-{strategy}" / "seed0")
    return root


def test_curves_have_one_cost_panel_per_constraint(two_constraint_runs):
    run = two_constraint_runs / TASK / "ppo-soft_switch" / "seed0"
    assert png_size(run / "curves.png")[0] == 1500  # reward + 2 cost panels, 5 inches each


def test_comparison_of_two_constraint_runs(two_constraint_runs, tmp_path):
    import csv

    from gradmanip.reporting.compare import compare_runs, to_markdown

    table = compare_runs([two_constraint_runs], tmp_path)
    soft = next(row for row in table if row["strategy"] == "soft_switch")
    rows = read_metrics(two_constraint_runs / TASK / "ppo-soft_switch" / "seed0")
    assert soft["cost_mean_0"] == rows[-1]["episode_cost_0"]  # final 10% of 3 epochs: the last
    assert soft["cost_mean_1"] == rows[-1]["episode_cost_1"]
    assert soft["cost_mean"] == pytest.approx(rows[-1]["episode_cost"])  # the total
    assert (soft["cost_limit_0"], soft["cost_limit_1"]) == (10.0, 10.0)
    within = [r["episode_cost_0"] <= 10 and r["episode_cost_1"] <= 10 for r in rows]
    assert soft["within_limit_share"] == pytest.approx(sum(within) / len(within))
    line = next(x for x in to_markdown(table).splitlines() if "soft_switch" in x)
    costs = f"{rows[-1]['episode_cost_0']:.2f} ± 0.00 / {rows[-1]['episode_cost_1']:.2f} ± 0.00"
    assert f"| {costs} | 10 / 10 |" in line
    with (tmp_path / "comparison.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert {"cost_mean_0", "cost_std_1", "cost_limit_1"} <= set(header)
    assert png_size(tmp_path / "comparison.png")[0] == 1500


def test_results_page_of_two_constraint_runs(two_constraint_runs, tmp_path):
    from gradmanip.reporting.results_markdown import fmt_number
    from gradmanip.reporting.results_page import write_results_page

    page, figures = write_results_page([two_constraint_runs], tmp_path / "results.md", cut=None)
    text = page.read_text()
    assert "| cost (limit 10 / 10) |" in text
    summary = json.loads(
        (two_constraint_runs / TASK / "ppo-soft_switch" / "seed0" / "summary.json").read_text()
    )
    row = next(line for line in text.splitlines() if line.startswith("| soft_switch"))
    eval_costs = " / ".join(fmt_number(summary[f"eval/cost_{k}"]) for k in range(2))
    assert f"| {eval_costs} |" in row  # the evaluation's cost of each constraint
    # reward + one panel per constraint, 4.8 inches each at 90 dpi, and the legend beside them
    assert 3 * 432 < png_size(figures[TASK])[0] < 4 * 432
