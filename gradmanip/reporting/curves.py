"""The end-of-run picture: episodic reward and cost (one panel per constraint) against
environment steps, with the deterministic evaluations made during training as points."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gradmanip.reporting.metrics_file import read_metrics, read_run_info  # noqa: E402
from gradmanip.reporting.runs import constraint_names, cost_keys, cost_limits  # noqa: E402

EVAL_STYLE = {
    "color": "black",
    "marker": "o",
    "markersize": 3,
    "linewidth": 0.8,
    "label": "evaluation (deterministic)",
}


def draw_limit(ax: plt.Axes, cost_limit: float, slack_lower: float, slack_upper: float) -> None:
    """Cost limit as a dashed line; the slack band [b + h-, b + h+] shaded (its finite part)."""
    ax.axhline(
        cost_limit, color="black", linestyle="--", linewidth=1, label=f"limit {cost_limit:g}"
    )
    if slack_lower == 0 and slack_upper == 0:
        return
    low, high = ax.get_ylim()
    lo = cost_limit + slack_lower if math.isfinite(slack_lower) else min(low, cost_limit)
    hi = cost_limit + slack_upper if math.isfinite(slack_upper) else max(high, cost_limit)
    ax.axhspan(lo, hi, color="tab:orange", alpha=0.15, label="slack band")
    ax.set_ylim(low, high)


def _per_constraint(value: Any, k: int, default: float) -> list[float]:
    """A run.json setting (number, list of K or missing) as K floats."""
    if value is None:
        return [default] * k
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = [float(v) for v in value]
        return values * k if len(values) == 1 else values
    return [float(value)] * k


def plot_run(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Write ``curves.png`` (or ``path``) for one run directory and return its path: the
    episodic reward, then one panel per constraint with its episodic cost, its limit (dashed)
    and its slack band (shaded)."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    info = read_run_info(run_dir)
    keys = cost_keys(rows[0]) if rows else ["episode_cost"]
    k = len(keys)
    steps = [r["env_steps"] for r in rows]
    fig, (ax_r, *ax_costs) = plt.subplots(
        1, 1 + k, figsize=(5 * (1 + k), 3.8), constrained_layout=True
    )
    ax_r.plot(steps, [r["episode_return"] for r in rows], color="tab:blue", label="training")
    evaluated = [r for r in rows if math.isfinite(r.get("eval/return", math.nan))]
    eval_steps = [r["env_steps"] for r in evaluated]
    if evaluated:
        ax_r.plot(eval_steps, [r["eval/return"] for r in evaluated], **EVAL_STYLE)
        ax_r.legend(loc="best", fontsize=8)
    ax_r.set(xlabel="environment steps", ylabel="episodic reward", title=info.get("env", ""))
    limits = cost_limits(info.get("cost_limit"), k) if "cost_limit" in info else None
    lower = _per_constraint(info.get("slack_lower"), k, 0.0)
    upper = _per_constraint(info.get("slack_upper"), k, 0.0)
    title = f"{info.get('algo', '')} + {info.get('strategy', '')}"
    eval_keys = constraint_names("eval/cost", k)
    for i, (ax, key) in enumerate(zip(ax_costs, keys, strict=True)):
        ax.plot(steps, [r.get(key, math.nan) for r in rows], color="tab:red", label="training")
        if evaluated:
            ax.plot(eval_steps, [r.get(eval_keys[i], math.nan) for r in evaluated], **EVAL_STYLE)
        ax.set(
            xlabel="environment steps",
            ylabel="episodic cost" if k == 1 else f"episodic cost {i}",
            title=title if k == 1 else f"{title}: constraint {i}",
        )
        if limits is not None and math.isfinite(limits[i]):
            draw_limit(ax, limits[i], lower[i], upper[i])
        if evaluated or (limits is not None and math.isfinite(limits[i])):
            ax.legend(loc="best", fontsize=8)
    for ax in (ax_r, *ax_costs):
        ax.grid(alpha=0.3)
    out = Path(path) if path is not None else run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
