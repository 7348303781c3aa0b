"""The headline table: one row per task, one column per strategy, each cell the group's final
reward with its cost (means over seeds of the last 10% of the epochs), costs above their limit in
bold. It is what a README shows; ``gradmanip-compare PATHS --headline README.md`` writes it
between the page's marker comments, so the numbers always come from the runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from gradmanip.reporting.group_results import REFERENCE_STRATEGY
from gradmanip.reporting.grouping import RunGroup, group_runs
from gradmanip.reporting.page_block import check_page, write_block
from gradmanip.reporting.results_markdown import DASH, fmt_number, fmt_steps
from gradmanip.reporting.run_metrics import FINAL_FRACTION, final_mean
from gradmanip.reporting.runs import load_runs

FIRST = ("soft_switch", "hard_switch", "lagrangian")


def _column_order(name: str) -> tuple:
    first = FIRST.index(name) if name in FIRST else len(FIRST)
    return (name.startswith(REFERENCE_STRATEGY), first, name)


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if math.isfinite(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _finished(group: RunGroup) -> RunGroup:
    runs = [run for run in group.runs if run.finished and run.rows]
    return replace(group, runs=runs)


def _header(name: str, groups: Sequence[RunGroup]) -> str:
    seeds = sorted({g.seeds for g in groups if g.name == name})
    counts = " or ".join(map(str, seeds))
    return f"`{name}`, {counts} seed{'s' if seeds != [1] else ''}"


def headline_cell(group: RunGroup, fraction: float = FINAL_FRACTION) -> str:
    """``reward (cost c)``, or ``reward (costs c0, c1)``; a cost above its limit in bold."""
    reward = _mean(
        [final_mean([r["episode_return"] for r in run.rows], fraction) for run in group.runs]
    )
    keys, limits = group.runs[0].cost_keys, group.runs[0].limits
    costs = []
    for i, key in enumerate(keys):
        cost = _mean([final_mean([r[key] for r in run.rows], fraction) for run in group.runs])
        shown = fmt_number(cost)
        costs.append(f"**{shown}**" if cost > limits[i] else shown)
    label = "cost" if len(costs) == 1 else "costs"
    return f"{fmt_number(reward)} ({label} {', '.join(costs)})"


def headline_table(groups: Sequence[RunGroup], fraction: float = FINAL_FRACTION) -> str:
    """The table, with a line saying what the cells are."""
    groups = [_finished(g) for g in groups]
    groups = [g for g in groups if g.runs]
    tasks = sorted({g.env for g in groups})
    columns = sorted({g.name for g in groups}, key=_column_order)
    cells = {(g.env, g.name): g for g in groups}
    limits = sorted({", ".join(f"{b:g}" for b in g.runs[0].limits) for g in groups})
    budgets = sorted({g.total_steps for g in groups if g.total_steps})
    lines = [
        "| task | " + " | ".join(_header(c, groups) for c in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for task in tasks:
        row = [
            headline_cell(cells[task, c], fraction) if (task, c) in cells else DASH for c in columns
        ]
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    note = (
        f"Episodic reward (and cost) of the training episodes over the last {fraction:.0%} of the "
        f"epochs, mean over the finished runs' seeds"
        + (f", {' / '.join(fmt_steps(b) for b in budgets)} environment steps" if budgets else "")
        + f"; cost limit {' / '.join(limits)}, costs above it in bold."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_headline(
    paths: Iterable[str | os.PathLike],
    page: str | os.PathLike,
    fraction: float = FINAL_FRACTION,
) -> Path:
    """Write the headline table of the runs below ``paths`` into the generated part of ``page``
    (which must exist and have the marker comments)."""
    page = Path(page)
    if not page.exists():
        raise FileNotFoundError(f"{page} does not exist: --headline writes into an existing page")
    check_page(page)
    return write_block(page, headline_table(group_runs(load_runs(paths)), fraction))
