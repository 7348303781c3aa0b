"""The training diagnostics of the results page, against values computed by hand."""

from __future__ import annotations

import pytest

from gradmanip.reporting import MetricsFile, write_run_info
from gradmanip.reporting.grouping import group_runs
from gradmanip.reporting.runs import load_runs
from gradmanip.reporting.training_diagnostics import diagnostics_table, run_diagnostics


def _run(path, lengths, episodes, costs, modes=None, seed=0):
    write_run_info(
        path,
        {
            "env": "SafetyHopperVelocity-v1",
            "algo": "ppo",
            "strategy": "soft_switch",
            "seed": seed,
            "cost_limit": 25.0,
            "total_steps": 100 * len(costs),
            "steps_per_epoch": 100,
        },
    )
    log = MetricsFile(path)
    for epoch, (length, count, cost) in enumerate(
        zip(lengths, episodes, costs, strict=True), start=1
    ):
        row = {
            "epoch": epoch,
            "env_steps": 100 * epoch,
            "episode_return": 1.0,
            "episode_cost": cost,
            "episode_length": length,
            "episodes": count,
        }
        if modes is not None:
            row["strategy/mode"] = modes[epoch - 1]
        log.write(row)
    return path


def test_one_run_by_hand(tmp_path):
    # 20 epochs: the last 10% are epochs 19 and 20; the first 20% (4 epochs) are skipped for modes.
    costs = [0.0] * 18 + [20.0, 30.0]
    lengths = [10.0] * 18 + [400.0, 600.0]
    episodes = [50.0] * 18 + [2.0, 4.0]
    modes = [2, 2, 2, 2] + [1] * 8 + [0] * 4 + [2] * 4
    _run(tmp_path / "r", lengths, episodes, costs, modes)
    (run,) = load_runs([tmp_path])
    d = run_diagnostics(run)
    assert d.episode_length == 500.0
    assert d.episodes_per_epoch == 3.0
    assert d.cost_spread == 5.0  # population std of [20, 30]
    assert d.modes == {1: 0.5, 0: 0.25, 2: 0.25}


def test_epochs_without_a_strategy_step_count_for_no_mode(tmp_path):
    # 5 warm-up epochs without an update (no mode, as SAC logs them) in a 10-epoch run: the
    # first 20% are 2 epochs, so 3 warm-up epochs fall in the counted ones and are left out
    nan = float("nan")
    modes = [nan] * 5 + [1, 1, 0, 2, 2]
    _run(tmp_path / "r", [1.0] * 10, [1.0] * 10, [3.0] * 10, modes)
    (run,) = load_runs([tmp_path])
    assert run_diagnostics(run).modes == {1: 0.4, 0: 0.2, 2: 0.4}


def test_run_without_mode_column_has_no_modes(tmp_path):
    _run(tmp_path / "r", [1.0] * 10, [1.0] * 10, [3.0] * 10)
    (run,) = load_runs([tmp_path])
    d = run_diagnostics(run)
    assert d.modes == {} and d.cost_spread == 0.0


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_table_is_mean_and_std_over_seeds(tmp_path, fraction):
    for seed, length in ((0, 300.0), (1, 500.0)):
        _run(tmp_path / f"s{seed}", [length] * 10, [2.0] * 10, [25.0] * 10, [0] * 10, seed)
    table = diagnostics_table(group_runs(load_runs([tmp_path])), fraction)
    header, rule, row = table.strip().splitlines()
    assert header.startswith("| strategy | episode length")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == [
        "soft_switch",
        "400 ± 100",
        "2.00 ± 0.00",
        "0.00 ± 0.00",
        "0 ± 0% / 100 ± 0% / 0 ± 0%",
    ]
