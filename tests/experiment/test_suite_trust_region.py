"""The trust-region suite config: what it runs, and that its status action works."""

from __future__ import annotations

from suite_commands import suite_runs, suite_status


def test_velocity_trust_region_suite_config() -> None:
    runs = suite_runs("velocity_trust_region")
    assert len({run.task for run in runs}) == 6
    assert all(run.algo == "trpo" and run.total_steps == 500_000 for run in runs)
    rules = [run for run in runs if run.strategy != "reward_only"]
    assert {run.strategy for run in rules} == {"soft_switch", "cpo", "pcpo", "soft_switch_upgrad"}
    assert {run.seed for run in rules} == {0, 1, 2} and len(rules) == 6 * 4 * 3


def test_velocity_trust_region_status_lists_every_run(tmp_path) -> None:
    result = suite_status("velocity_trust_region", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "78 runs, 0 done, 0 partial, 78 pending" in result.stdout
    assert "SafetyHumanoidVelocity-v1/trpo-soft_switch_upgrad/seed2" in result.stdout
    assert not (tmp_path / "out").exists()  # status starts nothing
