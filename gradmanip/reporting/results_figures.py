"""One figure per task: every group's mean reward and cost curves with a ± one std band.

Panels: the episodic reward, then the episodic cost of each constraint with its limit dashed;
one row of panels per base algorithm (PPO, TRPO, SAC, ...), on one environment-step axis, with
the row's legend beside it. Each group (runs of one strategy and settings, see
:mod:`gradmanip.reporting.grouping`) is one curve averaged over its seeds, so runs of different
budgets are never averaged together. A strategy keeps its colour in every row and figure; groups
of one strategy in one row (other settings) take shades of it. A group whose runs evaluate
during training (``eval_every`` > 0) adds its test episodes' mean as a dotted curve of the same
colour.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from gradmanip.reporting.group_results import REFERENCE_STRATEGY  # noqa: E402
from gradmanip.reporting.grouping import RunGroup  # noqa: E402
from gradmanip.reporting.mean_curve import mean_curve  # noqa: E402
from gradmanip.reporting.results_markdown import fmt_steps  # noqa: E402
from gradmanip.reporting.runs import constraint_names  # noqa: E402

TEST_RETURN, TEST_COST = "eval/return", "eval/cost"
TEST = {"linestyle": ":", "marker": ".", "markersize": 4, "label": "_test"}
"""Style of the test curves: dotted, the group's colour, no legend entry of their own."""


def curve_label(group: RunGroup, width: int = 60) -> str:
    """Legend entry: the group's name and seed count (the row names the algorithm), wrapped
    at ``width`` characters so that long settings keep the legend's column narrow."""
    label = f"{group.name}, {group.seeds} seed{'s' if group.seeds != 1 else ''}"
    return textwrap.fill(label, width, subsequent_indent="  ")


Colours = dict[tuple[str, str, str], tuple[float, float, float]]
"""A group's colour by its task, algorithm and name (see :func:`colour_key`)."""


def colour_key(group: RunGroup) -> tuple[str, str, str]:
    """Task, algorithm and name: unique among a page's groups."""
    return group.env, group.algo, group.name


def group_colours(groups: Sequence[RunGroup]) -> Colours:
    """One hue per strategy (sorted names, the default colour cycle); groups of one strategy,
    task and algorithm take shades of it, darkest first."""
    strategies = sorted({g.strategy for g in groups})
    hue = {s: to_rgb(f"C{i % 10}") for i, s in enumerate(strategies)}
    siblings: dict[tuple[str, str, str], list[RunGroup]] = {}
    for g in groups:
        siblings.setdefault((g.env, g.algo, g.strategy), []).append(g)
    colours: Colours = {}
    for (_, _, strategy), family in siblings.items():
        shades = np.linspace(-0.4, 0.4, len(family)) if len(family) > 1 else [0.0]
        for g, amount in zip(family, shades, strict=True):
            colours[colour_key(g)] = _shade(hue[strategy], float(amount))
    return colours


def _shade(rgb: tuple[float, float, float], amount: float) -> tuple[float, float, float]:
    """``rgb`` mixed with black (``amount`` < 0) or white (> 0) by ``abs(amount)``."""
    towards = 1.0 if amount > 0 else 0.0
    return tuple(c + abs(amount) * (towards - c) for c in rgb)  # type: ignore[return-value]


def plot_task(
    task: str,
    groups: Sequence[RunGroup],
    path: str | os.PathLike,
    cut: float | None = None,
    colours: Colours | None = None,
) -> Path:
    """Write the figure of ``task`` (its ``groups``) to ``path``; ``cut`` is marked if reached.

    ``colours`` (:func:`group_colours` of ``groups`` by default) lets several figures colour a
    strategy alike. Where the unconstrained reference's cost would
    squash the other curves against the limit, the cost axis stops above them and says how far
    the reference goes.
    """
    keys = max((g.runs[0].cost_keys for g in groups), key=len)
    algos = sorted({g.algo for g in groups})
    fig, axes = plt.subplots(
        len(algos),
        1 + len(keys),
        figsize=(4.8 * (1 + len(keys)), 3.6 * len(algos)),
        squeeze=False,
        sharex=True,
        layout="constrained",
        dpi=90,
    )
    colours = colours if colours is not None else group_colours(groups)
    rows = [[g for g in groups if g.algo == algo] for algo in algos]
    last_step = max(
        _plot_row(row_groups, axes_row, keys, colours)
        for row_groups, axes_row in zip(rows, axes, strict=True)
    )
    if len(algos) > 1:
        fig.suptitle(task)
    for algo, (ax_reward, *ax_costs) in zip(algos, axes, strict=True):
        prefix = algo if len(algos) > 1 else task
        ax_reward.set(title=f"{prefix}: reward", ylabel="episodic reward")
        for i, ax in enumerate(ax_costs):
            name = "episodic cost" if len(keys) == 1 else f"episodic cost {i}"
            ax.set(title=f"{prefix}: {name}", ylabel=name)
    for ax in axes.flat:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt_steps(x) if x else "0"))
        if cut is not None and last_step > cut:
            ax.axvline(cut, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("environment steps")
    renderer = fig.canvas.get_renderer()
    legend_width = max(row[-1].get_legend().get_window_extent(renderer).width for row in axes)
    # the panels keep their width; the legend's column adds its own, with its padding
    fig.set_figwidth(fig.get_figwidth() + legend_width / fig.dpi + 0.2)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _plot_row(
    groups: Sequence[RunGroup],
    axes: Sequence[plt.Axes],
    keys: Sequence[str],
    colours: Colours,
) -> float:
    """Draw one algorithm's ``groups`` on its row of ``axes``; the last environment step drawn."""
    ax_reward, *ax_costs = axes
    panels = [_CostPanel() for _ in keys]
    test_keys = constraint_names(TEST_COST, len(keys))
    last_step = 0.0
    for group in groups:
        curves = [run.rows for run in group.runs]
        x, mean, std = mean_curve(curves, "episode_return")
        if not len(x):
            continue
        last_step = max(last_step, x[-1])
        colour = colours[colour_key(group)]
        ax_reward.plot(x, mean, color=colour, label=curve_label(group))
        ax_reward.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2)
        tests = [run.evaluations for run in group.runs]
        if all(tests):
            ax_reward.plot(*mean_curve(tests, TEST_RETURN)[:2], color=colour, **TEST)
        run = group.runs[0]
        for i, (key, limit) in enumerate(zip(run.cost_keys, run.limits, strict=True)):
            x, mean, std = mean_curve(curves, key)
            ax_costs[i].plot(x, mean, color=colour)
            ax_costs[i].fill_between(x, mean - std, mean + std, color=colour, alpha=0.2)
            panels[i].add(limit, float((mean + std).max()), group.strategy == REFERENCE_STRATEGY)
            if all(tests):
                x, mean, _ = mean_curve(tests, test_keys[i])
                ax_costs[i].plot(x, mean, color=colour, **TEST)
    for ax, panel in zip(ax_costs, panels, strict=True):
        panel.finish(ax)
    if any(line.get_label() == TEST["label"] for line in ax_reward.lines):
        ax_reward.plot(
            [], [], color="grey", linestyle=":", marker=".", label="test episodes (dotted)"
        )
    handles, labels = ax_reward.get_legend_handles_labels()
    if axes[-1].get_legend() is not None:  # the limit's, kept inside the panel
        axes[-1].add_artist(axes[-1].get_legend())
    legend = axes[-1].legend(
        handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    for text in legend.get_texts():
        text.set_multialignment("left")  # wrapped labels read as paragraphs
    return last_step


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
    colours = group_colours(groups)
    return {
        task: plot_task(
            task, [g for g in groups if g.env == task], Path(folder) / f"{task}.png", cut, colours
        )
        for task in tasks
    }
