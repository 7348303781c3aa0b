"""The headline table: cells by hand, finished runs only, and the README's table is the one the
committed results give."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradmanip.reporting.compare import main
from gradmanip.reporting.grouping import group_runs
from gradmanip.reporting.headline import headline_table
from gradmanip.reporting.page_block import BEGIN, END
from gradmanip.reporting.runs import load_runs

ROOT = Path(__file__).resolve().parents[2]


def test_cells_by_hand(tmp_path, write_run):
    done = {"eval/return": 1.0}
    # 10 epochs: the last 10% is the last epoch
    write_run(tmp_path / "s0", [0.0] * 9 + [100.0], [0.0] * 9 + [20.0], summary=done)
    write_run(tmp_path / "s1", [0.0] * 9 + [300.0], [0.0] * 9 + [40.0], seed=1, summary=done)
    write_run(
        tmp_path / "r",
        [0.0] * 9 + [900.0],
        [0.0] * 9 + [10.0],
        strategy="reward_only",
        summary=done,
    )
    write_run(tmp_path / "h", [5.0] * 10, [5.0] * 10, strategy="hard_switch")  # unfinished
    lines = headline_table(group_runs(load_runs([tmp_path]))).splitlines()
    assert lines[0] == "| task | `soft_switch`, 2 seeds | `reward_only`, 1 seed |"
    assert lines[2] == "| SafetyHopperVelocity-v1 | 200 (cost **30.0**) | 900 (cost 10.0) |"
    assert "costs above it in bold" in lines[-1]


def test_two_constraints_each_against_its_limit(tmp_path, write_run):
    write_run(
        tmp_path / "s0", [50.0] * 10, [[10.0, 300.0]] * 10, limit=[25.0, 200.0], summary={"x": 1}
    )
    row = headline_table(group_runs(load_runs([tmp_path]))).splitlines()[2]
    assert row.endswith("| 50.0 (costs 10.0, **300**) |")


def test_headline_needs_an_existing_page_with_markers(tmp_path, write_run, capsys):
    write_run(tmp_path / "runs" / "s0", [1.0] * 10, [1.0] * 10, summary={"x": 1})
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "runs"), "--headline", str(tmp_path / "missing.md")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err
    page = tmp_path / "README.md"
    page.write_text(f"# Title\n\nprose\n\n{BEGIN}\nSTALE\n{END}\n\nmore prose\n")
    main([str(tmp_path / "runs"), "--headline", str(page)])
    text = page.read_text()
    assert "STALE" not in text and "| task |" in text and text.endswith("more prose\n")
    assert not (tmp_path / "comparison").exists()


def test_readme_table_comes_from_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip()
    expected = headline_table(group_runs(load_runs([ROOT / "results" / "velocity"]))).strip()
    assert block == expected, "re-render: gradmanip-compare results/velocity --headline README.md"
