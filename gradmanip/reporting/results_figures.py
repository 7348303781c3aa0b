"""One figure per task: every group's mean reward and cost curves with a ± one std band.

Panels: the episodic reward, then the episodic cost of each constraint with its limit dashed.
Each group (runs of one strategy and settings, see :mod:`gradmanip.reporting.grouping`) is one
curve averaged over its seeds, so runs of different budgets are never averaged together. A group
whose runs evaluate during training (``eval_every`` > 0) adds its test episodes' mean as a
dotted curve of the same colour.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from gradmanip.reporting.group_results import REFERENCE_STRATEGY  # noqa: E402
from gradmanip.reporting.grouping import RunGroup  # noqa: E402
from gradmanip.reporting.mean_curve import mean_curve  # noqa: E402
from gradmanip.reporting.results_markdown import fmt_steps  # noqa: E402
from gradmanip.reporting.runs import constraint_names  # noqa: E402

TEST_RETURN, TEST_COST = "eval/return", "eval/cost"
TEST = {"linestyle": ":", "marker": ".", "markersize": 4, "label": "_test"}
"""Style of the test curves: dotted, the group's colour, no legend entry of their own."""


def curve_label(group: RunGroup, with_algo: bool) -> str:
    """Legend entry: the group's name (with its algorithm) and seed count."""
    name = f"{group.algo} + {group.name}" if with_algo else group.name
    return f"{name}, {group.seeds} seed{'s' if group.seeds != 1 else ''}"


def plot_task(
    task: str, groups: Sequence[RunGroup], path: str | os.PathLike, cut: float | None = None
) -> Path:
    """Write the figure of ``task`` (its ``groups``) to ``path``; ``cut`` is marked if reached.

    Where the unconstrained reference's cost would squash the other curves against the limit,
    the cost axis stops above them and says how far the reference goes.
    """
    keys = max((g.runs[0].cost_keys for g in groups), key=len)
    fig, axes = plt.subplots(
        1, 1 + len(keys), figsize=(4.8 * (1 + len(keys)), 3.6), squeeze=False, layout="constrained"
    )
    ax_reward, *ax_costs = axes[0]
    with_algo = len({g.algo for g in groups}) > 1
    panels = [_CostPanel() for _ in keys]
    test_keys = constraint_names(TEST_COST, len(keys))
    last_step = 0.0
    for group in groups:
        curves = [run.rows for run in group.runs]
        x, mean, std = mean_curve(curves, "episode_return")
        if not len(x):
            continue
        last_step = max(last_step, x[-1])
        (line,) = ax_reward.plot(x, mean, label=curve_label(group, with_algo))
        ax_reward.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        tests = [run.evaluations for run in group.runs]
        if all(tests):
            ax_reward.plot(*mean_curve(tests, TEST_RETURN)[:2], color=line.get_color(), **TEST)
        run = group.runs[0]
        for i, (key, limit) in enumerate(zip(run.cost_keys, run.limits, strict=True)):
            x, mean, std = mean_curve(curves, key)
            ax_costs[i].plot(x, mean, color=line.get_color())
            ax_costs[i].fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            panels[i].add(limit, float((mean + std).max()), group.strategy == REFERENCE_STRATEGY)
            if all(tests):
                x, mean, _ = mean_curve(tests, test_keys[i])
                ax_costs[i].plot(x, mean, color=line.get_color(), **TEST)
    for i, (ax, panel) in enumerate(zip(ax_costs, panels, strict=True)):
        name = "episodic cost" if len(keys) == 1 else f"episodic cost {i}"
        ax.set(title=f"{task}: {name}", xlabel="environment steps", ylabel=name)
        panel.finish(ax)
    ax_reward.set(title=f"{task}: reward", xlabel="environment steps", ylabel="episodic reward")
    for ax in axes[0]:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt_steps(x) if x else "0"))
        if cut is not None and last_step > cut:
            ax.axvline(cut, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    if any(line.get_label() == TEST["label"] for line in ax_reward.lines):
        ax_reward.plot(
            [], [], color="grey", linestyle=":", marker=".", label="test episodes (dotted)"
        )
    ax_reward.legend(fontsize=8, loc="best")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


class _CostPanel:
    """The limits and the curves' tops of one constraint's cost panel."""

    def __init__(self) -> None:
        self.limits: set[float] = set()
        self.top = 0.0  # highest mean + std of the constrained groups
        self.reference_top = 0.0

    def add(self, limit: float, top: float, reference: bool) -> None:
        if math.isfinite(limit):
            self.limits.add(limit)
        if reference:
            self.reference_top = max(self.reference_top, top)
        else:
            self.top = max(self.top, top)

    def finish(self, ax: plt.Axes) -> None:
        for limit in sorted(self.limits):
            ax.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit {limit:g}")
        if self.limits:
            ax.legend(fontsize=8, loc="upper right")
        top = 1.1 * max(self.top, 1.5 * max(self.limits, default=0.0))
        if self.top > 0 and self.reference_top > top:
            ax.set_ylim(-0.05 * top, top)
            ax.text(
                0.02,
                0.97,
                f"{REFERENCE_STRATEGY} off the axis (up to {self.reference_top:.0f})",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
            )


def plot_tasks(
    groups: Sequence[RunGroup], folder: str | os.PathLike, cut: float | None = None
) -> dict[str, Path]:
    """``<folder>/<task>.png`` for every task of ``groups``; task -> figure path."""
    tasks = sorted({g.env for g in groups})
    return {
        task: plot_task(
            task, [g for g in groups if g.env == task], Path(folder) / f"{task}.png", cut
        )
        for task in tasks
    }
