"""The SAC suites' configs: what they run, and that the status action lists every run."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from suite_commands import RECIPES, suite_runs, suite_status

TASKS = {"SafetyHopperVelocity-v1", "SafetyWalker2dVelocity-v1"}


@pytest.mark.parametrize(
    ("name", "strategies"),
    [
        ("sac", {"soft_switch", "lagrangian", "hard_switch"}),
        ("sac_eval", {"soft_switch", "lagrangian", "hard_switch"}),
        ("sac_reference", {"reward_only"}),
    ],
)
def test_sac_suite_config(name: str, strategies: set[str]) -> None:
    runs = suite_runs(name)
    assert {run.task for run in runs} == TASKS
    assert all(run.algo == "sac" and run.total_steps == 300_000 for run in runs)
    assert {run.strategy for run in runs} == strategies
    assert {run.seed for run in runs} == {0, 1, 2}
    assert len(runs) == len(TASKS) * len(strategies) * 3
    assert len(set(runs)) == len(runs)


@pytest.mark.parametrize("name", ["sac", "sac_reference"])
def test_sac_suite_runs_seed_zero_first(name: str) -> None:
    runs = suite_runs(name)
    assert {run.seed for run in runs[: len(runs) // 3]} == {0}  # seed 0 of every cell first


def test_sac_eval_suite_runs_hopper_pairs_first() -> None:
    runs = suite_runs("sac_eval")
    pairs = [
        (r.task.removeprefix("Safety").removesuffix("Velocity-v1"), r.strategy, r.seed)
        for r in runs
    ]
    assert pairs[:6] == [
        (task, strategy, seed)
        for task in ["Hopper"]
        for seed in (0, 1, 2)
        for strategy in ("soft_switch", "lagrangian")
    ]
    assert pairs[6:9] == [("Hopper", "hard_switch", seed) for seed in (0, 1, 2)]
    assert {task for task, _, _ in pairs[9:]} == {"Walker2d"}


def test_sac_reference_status_lists_every_run(tmp_path) -> None:
    result = suite_status("sac_reference", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "6 runs, 0 done, 0 partial, 6 pending" in result.stdout
    assert "SafetyWalker2dVelocity-v1/sac-reward_only/seed2" in result.stdout
    assert not (tmp_path / "out").exists()  # status starts nothing


def test_sac_entropy_suite_shares_the_entropy_term_of_soft_switching_on_hopper() -> None:
    runs = suite_runs("sac_entropy")
    assert [(run.strategy, run.seed, run.total_steps) for run in runs] == [
        ("soft_switch", seed, 200_000) for seed in (0, 1, 2)
    ]
    assert {run.task for run in runs} == {"SafetyHopperVelocity-v1"}
    reference = {(run.task, run.strategy, run.seed) for run in suite_runs("sac_eval")}
    assert {(run.task, run.strategy, run.seed) for run in runs} <= reference
    config = OmegaConf.load(RECIPES / "config" / "suite" / "sac_entropy.yaml")
    assert list(config.overrides) == ["algo.base.entropy_term=shared"]
