"""Markdown tables of group results and anchors: mean ± std over seeds, one row per group."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from gradmanip.reporting.anchors import Anchor
from gradmanip.reporting.group_results import REFERENCE_STRATEGY, GroupResult
from gradmanip.reporting.run_metrics import REACH_FRACTIONS, RunFigures

DASH = "—"


def fmt_number(value: float, like: float | None = None) -> str:
    """``value`` with decimals for the size of ``like`` (default ``value``): 1488, 17.0, 2.40."""
    if not math.isfinite(value):
        return DASH
    size = abs(value if like is None else like)
    return f"{value:.{0 if size >= 100 else 1 if size >= 10 else 2}f}"


def _finite(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def fmt_mean_std(values: Iterable[float | None], percent: bool = False) -> str:
    """``mean ± std`` of the finite values (one value alone; ``—`` for none); ``percent`` shows
    shares as whole percentages."""
    kept = _finite(values)
    if not kept:
        return DASH
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept))
    if percent:
        return f"{100 * mean:.0f}%" if len(kept) == 1 else f"{100 * mean:.0f} ± {100 * std:.0f}%"
    if len(kept) == 1:
        return fmt_number(mean)
    return f"{fmt_number(mean)} ± {fmt_number(std, like=mean)}"


def fmt_steps(steps: float) -> str:
    """Environment steps in thousands or millions: ``180k``, ``10M``."""
    if steps >= 1_000_000:
        return f"{round(steps / 1e6, 2):g}M"
    return f"{steps / 1000:.0f}k"


def fmt_reach(steps: Sequence[float | None] | None) -> str:
    """Mean steps over the runs that got there, with how many did: ``180k (3/3)``."""
    if steps is None:
        return "n/a"
    reached = [s for s in steps if s is not None]
    if not reached:
        return DASH
    return f"{fmt_steps(sum(reached) / len(reached))} ({len(reached)}/{len(steps)})"


def fmt_limits(limits: Sequence[float]) -> str:
    return " / ".join(f"{b:g}" for b in limits)


def _of_some(cell: str, some: int, runs: int) -> str:
    return cell if some == runs or cell == DASH else f"{cell} ({some}/{runs})"


def _nth(values: Sequence[float | None], i: int) -> float | None:
    return values[i] if i < len(values) else None


def _evaluation_cells(
    figures: Sequence[RunFigures], rewards: list[float | None], costs: list[list], k: int
) -> list[str]:
    """Reward and cost cells over the runs that have them (``(2/3)``: two of three runs)."""
    done = [i for i, r in enumerate(rewards) if r is not None]
    if not done:
        return [DASH, DASH]
    reward = fmt_mean_std(rewards[i] for i in done)
    cost = " / ".join(fmt_mean_std(_nth(costs[i], j) for i in done) for j in range(k))
    return [_of_some(reward, len(done), len(figures)), _of_some(cost, len(done), len(figures))]


def _cells(
    result: GroupResult, with_algo: bool, limit_column: bool, evaluated: bool, tested: bool
) -> list[str]:
    group, figures = result.group, result.figures
    k = len(result.limits)
    name = f"{group.algo} + {group.name}" if with_algo else group.name
    seeds = f"{group.seeds}" + (f" ({result.unfinished} unfinished)" if result.unfinished else "")
    cells = [name, seeds]
    if evaluated:
        steps = group.total_steps
        cells.insert(1, fmt_steps(steps) if steps else DASH)
    if limit_column:
        cells.append(fmt_limits(result.limits))
    cells += [
        fmt_mean_std(f.reward for f in figures),
        " / ".join(fmt_mean_std(_nth(f.costs, i) for f in figures) for i in range(k)),
        fmt_mean_std((f.within for f in figures), percent=True),
    ]
    if tested:
        tests = [f.test_reward for f in figures], [f.test_costs for f in figures]
        cells += _evaluation_cells(figures, *tests, k)
    if evaluated:
        finals = [f.eval_reward for f in figures], [f.eval_costs for f in figures]
        cells += _evaluation_cells(figures, *finals, k)
    for share in REACH_FRACTIONS:
        steps = None if not figures or not figures[0].reach else [f.reach[share] for f in figures]
        cells.append(fmt_reach(steps))
    return cells


def results_table(results: Sequence[GroupResult], evaluated: bool = True) -> str:
    """One row per group; ``evaluated`` adds the budget and the final policy's evaluation, and
    runs that evaluate during training add their test reward and cost."""
    results = sorted(results, key=_row_order)
    tested = any(f.test_reward is not None for r in results for f in r.figures)
    with_algo = len({r.group.algo for r in results}) > 1
    limits = {tuple(r.limits) for r in results}
    limit_column = len(limits) > 1
    cost = "cost" if limit_column else f"cost (limit {fmt_limits(next(iter(limits)))})"
    header = ["strategy", "seeds"]
    if evaluated:
        header.insert(1, "steps")
    header += ["limit"] * limit_column + ["reward", cost, "epochs within limit"]
    if tested:
        header += ["test reward", "test cost"]
    if evaluated:
        header += ["eval reward", "eval cost"]
    header += [f"{share:.0%} of ref." for share in REACH_FRACTIONS]
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    lines += [markdown_row(_cells(r, with_algo, limit_column, evaluated, tested)) for r in results]
    return "\n".join(lines) + "\n"


def reference_note(results: Sequence[GroupResult], cut: float | None = None) -> str:
    """The reference rewards the table's step columns are measured against."""
    seen = {}
    for r in results:
        if r.reference is not None and r.reference_reward is not None:
            seen[id(r.reference)] = (r.reference, r.reference_reward)
    if not seen:
        return f"No `{REFERENCE_STRATEGY}` group of the same budget: no reference reward.\n"
    parts = []
    for group, reward in seen.values():
        steps = fmt_steps(group.total_steps) if group.total_steps else "?"
        parts.append(
            f"{fmt_number(reward)} (`{group.algo} + {group.name}`, {steps}-step runs, "
            f"{group.seeds} seed{'s' if group.seeds != 1 else ''})"
        )
    at = f" at {fmt_steps(cut)} steps" if cut else ""
    return f"Reference reward{at}: " + "; ".join(parts) + ".\n"


def anchors_table(anchors: Sequence[Anchor]) -> str:
    """Published numbers with the budget they were reached at."""
    lines = [
        markdown_row(["source", "algorithm", "steps", "reward", "cost"]),
        markdown_row(["---"] * 5),
    ]
    for a in anchors:
        source = f"[{a.source}]({a.url})" if a.url else a.source
        cost = DASH if a.cost is None else f"{a.cost:.1f}"
        lines.append(markdown_row([source, a.algorithm, fmt_steps(a.steps), f"{a.reward:g}", cost]))
    return "\n".join(lines) + "\n"


def _row_order(result: GroupResult) -> tuple:
    g = result.group
    return (g.algo, g.strategy == REFERENCE_STRATEGY, g.strategy, g.total_steps or 0, g.label)


def markdown_row(cells: Sequence[str]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"
