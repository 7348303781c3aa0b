"""The tutorials' code runs (small budgets) and does what the pages say.

Every tutorial page includes its code from ``docs/tutorials/code`` with pymdownx.snippets, so
the code tested here is exactly the code shown. Each file runs in its own process (tutorials
register strategies and tasks in process-wide registries) with ``GRADMANIP_DOCS_SMALL=1``.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "docs" / "tutorials" / "code"
TUTORIALS = ROOT / "docs" / "tutorials"
MODES = {"0", "1", "2"}


def run_tutorial(name: str, tmp_path: Path, timeout: float = 240) -> str:
    """Run ``docs/tutorials/code/<name>`` from the project root with the small budget."""
    path = CODE / name
    env = {
        **os.environ,
        "GRADMANIP_DOCS_SMALL": "1",
        "RUNS": str(tmp_path / "runs"),
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
    }
    command = [sys.executable, str(path)] if path.suffix == ".py" else ["bash", str(path)]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def epoch_lines(output: str) -> list[re.Match]:
    pattern = r"epoch +(\d+)  return +(-?[\d.]+) +cost +([\d.]+) \(limit ([\d.]+)\)  mode (\d)"
    return list(re.finditer(pattern, output))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_code_file_is_shown_on_exactly_one_page():
    pages = {page: page.read_text() for page in TUTORIALS.glob("*.md")}
    for code in sorted(CODE.iterdir()):
        including = [p.name for p, text in pages.items() if f'--8<-- "{code.name}"' in text]
        assert len(including) == 1, f"{code.name} is included by {including}, expected one page"
    for page, text in pages.items():
        for name in re.findall(r'--8<-- "([^"]+)"', text):
            assert (CODE / name).exists() or (ROOT / "recipes" / name).exists(), (
                f"{page.name} includes {name}, which does not exist"
            )


@pytest.mark.slow
def test_01_own_loop(tmp_path):
    lines = epoch_lines(run_tutorial("01_own_loop.py", tmp_path))
    assert [int(m.group(1)) for m in lines] == [1, 2, 3]
    for m in lines:
        assert float(m.group(3)) >= 0
        assert float(m.group(4)) == 25  # SafetyHopperVelocity-v1
        assert m.group(5) in MODES


def test_02_custom_strategy(tmp_path):
    out = run_tutorial("02_custom_strategy.py", tmp_path)
    assert "SmoothedSwitch(cost_limit=10.0, smoothing=0.5) passes check_strategy" in out
    assert "update at J_c = 12: [-1.0, 1.0]" in out  # above the limit: g_c
    # the moving average with smoothing 0.5: 12, then 0.5 * 12 + 0.5 * 4 = 8, then 6
    assert "after J_c = 12.0: smoothed cost 12.00" in out
    assert "after J_c =  4.0: smoothed cost 8.00" in out
    assert "after J_c =  4.0: smoothed cost 6.00" in out
    assert "update now: [1.0, 0.0]" in out  # below the limit: g_r
    assert "ForgetfulSwitch fails check_strategy: state_dict round trip" in out


@pytest.mark.slow
def test_03_custom_env(tmp_path):
    out = run_tutorial("03_custom_env.py", tmp_path)
    assert "registered: True" in out
    assert "default cost limit: 5.0" in out
    assert "rollout cost: (50, 1) torch.float32" in out
    lines = epoch_lines(out)
    assert [int(m.group(1)) for m in lines] == [1, 2, 3]
    for m in lines:
        assert float(m.group(4)) == 5
        assert m.group(5) in MODES


@pytest.mark.slow
def test_04_pcrpo_paper(tmp_path):
    out = run_tutorial("04_pcrpo_paper.sh", tmp_path)
    run = tmp_path / "runs" / "SafetyPointVelocity-v0" / "seed0"
    info = json.loads((run / "run.json").read_text())
    assert (info["algo"], info["strategy"]) == ("trpo", "soft_switch")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["env_steps"] == 2000
    assert summary["cost_limit"] == 10.0
    assert '"epochs": 2' in out  # the script prints the summary
    rows = read_csv(run / "metrics.csv")
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    # safety from epoch 1: the first epoch is the reward-only warm-up
    assert float(rows[0]["strategy/mode"]) == 1
    assert (run / "checkpoints" / "last.pt").exists() and (run / "curves.png").exists()


@pytest.mark.slow
def test_07_own_sac_loop(tmp_path):
    out = run_tutorial("07_own_sac_loop.py", tmp_path)
    pattern = r"epoch +(\d+)  return +(-?[\d.]+) +cost +([\d.]+) \(limit 10\)  mode ([-012])"
    lines = re.findall(pattern, out)
    assert [int(epoch) for epoch, *_ in lines] == [1, 2]
    assert lines[0][3] == "-"  # the random warm-up: no gradient step
    assert lines[1][3] in MODES
    # 200 steps after the 200 warm-up steps, one gradient step every second step
    assert "100 gradient steps on 400 environment steps" in out


def check_comparison(out_dir: Path, strategies: set[str], seeds: int) -> None:
    table = read_csv(out_dir / "comparison.csv")
    assert {row["strategy"] for row in table} == strategies
    for row in table:
        assert (row["env"], row["algo"]) == ("SafetyPointVelocity-v0", "ppo")
        assert int(row["seeds"]) == seeds
        assert float(row["cost_limit"]) == 10.0
        assert 0.0 <= float(row["within_limit_share"]) <= 1.0
    markdown = (out_dir / "comparison.md").read_text()
    assert all(f"| {name} |" in markdown for name in strategies)
    assert (out_dir / "comparison.png").stat().st_size > 0


@pytest.mark.slow
def test_05_sweep_compare(tmp_path):
    run_tutorial("05_sweep_compare.sh", tmp_path)
    runs = sorted((tmp_path / "runs" / "sweep").rglob("run.json"))
    assert len(runs) == 6  # three strategies x two seeds
    check_comparison(
        tmp_path / "runs" / "comparison", {"soft_switch", "lagrangian", "reward_only"}, seeds=2
    )


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray instance at a time (pytest -n with --dist loadgroup)
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed (pip install 'ray[default]' to run the Ray tutorial)",
)
def test_06_ray_sweep(tmp_path):
    run_tutorial("06_ray_sweep.sh", tmp_path, timeout=400)
    runs = sorted((tmp_path / "runs" / "sweep").rglob("run.json"))
    assert len(runs) == 4  # two strategies x two seeds
    check_comparison(tmp_path / "runs" / "comparison", {"soft_switch", "lagrangian"}, seeds=2)
