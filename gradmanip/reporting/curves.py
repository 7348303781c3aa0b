"""The end-of-run picture: episodic reward and cost against environment steps."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gradmanip.reporting.metrics_file import read_metrics, read_run_info  # noqa: E402


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


def plot_run(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Write ``curves.png`` (or ``path``) for one run directory and return its path."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    info = read_run_info(run_dir)
    steps = [r["env_steps"] for r in rows]
    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ax_r.plot(steps, [r["episode_return"] for r in rows], color="tab:blue")
    ax_r.set(xlabel="environment steps", ylabel="episodic reward", title=info.get("env", ""))
    ax_c.plot(steps, [r["episode_cost"] for r in rows], color="tab:red")
    ax_c.set(
        xlabel="environment steps",
        ylabel="episodic cost",
        title=f"{info.get('algo', '')} + {info.get('strategy', '')}",
    )
    if "cost_limit" in info:
        draw_limit(
            ax_c,
            float(info["cost_limit"]),
            float(info.get("slack_lower", 0.0)),
            float(info.get("slack_upper", 0.0)),
        )
        ax_c.legend(loc="best", fontsize=8)
    for ax in (ax_r, ax_c):
        ax.grid(alpha=0.3)
    out = Path(path) if path is not None else run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
