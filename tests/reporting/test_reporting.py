"""Run-directory tools: the metrics file, the run plot and the comparison table."""

import csv
import math

import matplotlib.figure
import numpy as np
import pytest

from gradmanip.reporting import (
    MetricsFile,
    compare_runs,
    plot_run,
    read_metrics,
    read_run_info,
    write_run_info,
)
from gradmanip.reporting.compare import find_runs, main, summarise


def make_run(path, rewards, costs, seed=0, strategy="soft_switch", limit=25.0, steps=100):
    write_run_info(
        path,
        {
            "env": "Task-v0",
            "algo": "ppo",
            "strategy": strategy,
            "seed": seed,
            "cost_limit": limit,
            "slack_upper": math.inf,
            "slack_lower": -5.0,
        },
    )
    log = MetricsFile(path)
    for epoch, (r, c) in enumerate(zip(rewards, costs, strict=True), start=1):
        log.write(
            {"epoch": epoch, "env_steps": epoch * steps, "episode_return": r, "episode_cost": c}
        )
    return path


def test_metrics_round_trip_and_resume_truncation(tmp_path):
    make_run(tmp_path, [1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["episode_cost"] for r in rows] == [30.0, 20.0, 10.0]
    log = MetricsFile(tmp_path)  # reopened, as a resumed run does
    log.truncate_after(2)
    log.write({"epoch": 3, "env_steps": 300, "episode_return": 4.0, "episode_cost": 5.0})
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["episode_return"] == 4.0


def test_resume_truncation_keeps_the_file_byte_identical(tmp_path):
    rows = [
        {"epoch": e, "env_steps": 4000 * e, "episode_return": e / 3, "kl": float("nan")}
        for e in (1, 2, 3)
    ]
    log = MetricsFile(tmp_path)
    for row in rows:
        log.write(row)
    whole = (tmp_path / "metrics.csv").read_bytes()
    assert b",4000," in whole
    log = MetricsFile(tmp_path)  # reopened after a kill, as a resumed run does
    log.truncate_after(1)
    assert (tmp_path / "metrics.csv").read_bytes() == whole[: whole.index(b"\n2,") + 1]
    for row in rows[1:]:
        log.write(row)
    assert (tmp_path / "metrics.csv").read_bytes() == whole


def test_widening_keeps_the_earlier_rows_text(tmp_path):
    log = MetricsFile(tmp_path)
    log.write({"epoch": 1, "env_steps": 4000, "a": 0.1})
    log.write({"epoch": 2, "env_steps": 8000, "a": 0.2, "b": 1})
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,env_steps,a,b", "1,4000,0.1,", "2,8000,0.2,1"]


def test_metrics_new_columns_widen_the_file(tmp_path):
    log = MetricsFile(tmp_path)
    with pytest.raises(KeyError, match="epoch"):
        log.write({"env_steps": 1})
    log.write({"epoch": 1, "a": 1.0})
    log.write({"epoch": 2, "b": 2.0})
    rows = read_metrics(tmp_path)
    assert rows[0]["a"] == 1.0 and math.isnan(rows[0]["b"])
    assert math.isnan(rows[1]["a"]) and rows[1]["b"] == 2.0


def test_run_info_keeps_infinite_slack(tmp_path):
    make_run(tmp_path, [1.0], [1.0])
    info = read_run_info(tmp_path)
    assert info["slack_upper"] == math.inf and info["slack_lower"] == -5.0


def test_plot_run_writes_png(tmp_path):
    make_run(tmp_path, [1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
    out = plot_run(tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_over_seeds_by_hand(tmp_path):
    # 10 epochs each; final fraction 0.2 -> mean of the last 2 epochs.
    a = make_run(tmp_path / "a", list(range(10)), [30.0] * 5 + [20.0] * 5, seed=0)
    b = make_run(tmp_path / "b", list(range(10, 20)), [30.0] * 8 + [24.0, 26.0], seed=1)
    make_run(tmp_path / "c", [0.0] * 10, [0.0] * 10, strategy="lagrangian")
    (row_l, row_s) = summarise(find_runs([tmp_path]), final_fraction=0.2)
    assert (row_s["strategy"], row_s["seeds"]) == ("soft_switch", 2)
    finals_r = [8.5, 18.5]
    finals_c = [20.0, 25.0]
    assert row_s["reward_mean"] == pytest.approx(np.mean(finals_r))
    assert row_s["reward_std"] == pytest.approx(np.std(finals_r))
    assert row_s["cost_mean"] == pytest.approx(np.mean(finals_c))
    assert row_s["cost_std"] == pytest.approx(2.5)
    assert row_s["within_limit_share"] == pytest.approx((5 + 1) / 20)
    assert row_l["within_limit_share"] == 1.0
    assert {a, b} <= set(find_runs([tmp_path]))


def test_compare_writes_table_csv_and_plot(tmp_path, capsys):
    for seed in range(3):
        make_run(tmp_path / "runs" / str(seed), [seed, seed + 1.0], [10.0, 20.0], seed=seed)
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| Task-v0 | ppo | soft_switch | 3 |" in md
    with (tmp_path / "out" / "comparison.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["reward_mean"]) == pytest.approx(2.0)
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 1000
    assert "comparison.md" in capsys.readouterr().out


def test_compare_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directories"):
        compare_runs([tmp_path], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        compare_runs([tmp_path / "missing"], tmp_path / "out")
    make_run(tmp_path / "r", [1.0], [1.0])
    with pytest.raises(ValueError, match="final_fraction"):
        compare_runs([tmp_path], tmp_path / "out", final_fraction=0)


def test_plot_run_shows_the_evaluations_as_points(tmp_path, monkeypatch):
    make_run(tmp_path, [1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
    log = MetricsFile(tmp_path)
    log.write(
        {"epoch": 4, "env_steps": 400, "episode_return": 4.0, "episode_cost": 5.0}
        | {"eval/return": 40.0, "eval/cost": 2.0}
    )
    figures = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig)
    )
    plot_run(tmp_path)
    reward_ax, cost_ax = figures[0].axes
    lines = {line.get_label(): line for line in reward_ax.lines}
    assert list(lines) == ["training", "evaluation (deterministic)"]
    assert list(lines["evaluation (deterministic)"].get_xdata()) == [400]
    assert list(lines["evaluation (deterministic)"].get_ydata()) == [40.0]
    evaluated = [line for line in cost_ax.lines if line.get_label() == "evaluation (deterministic)"]
    assert list(evaluated[0].get_ydata()) == [2.0]
