"""Compare runs: a table over seeds (Markdown + CSV) and a plot of mean curves with spread.

Usage::

    gradmanip-compare multirun/2026-11-25_12-00-00 --out results/
    python -m gradmanip.reporting RUN_DIR [RUN_DIR ...] --out results/

Every directory given is searched for run directories (those holding ``run.json`` and
``metrics.csv``). Runs are grouped by (env, algo, strategy); seeds are the spread. For each run,
the final reward and cost are averaged over its last ``final_fraction`` of epochs (at least one),
which is less noisy than the single last epoch.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gradmanip.reporting.metrics_file import (  # noqa: E402
    METRICS_NAME,
    RUN_INFO_NAME,
    read_metrics,
    read_run_info,
)

COLUMNS = [
    "env",
    "algo",
    "strategy",
    "seeds",
    "runs",
    "reward_mean",
    "reward_std",
    "cost_mean",
    "cost_std",
    "cost_limit",
    "within_limit_share",
]


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories at or below each path, sorted."""
    runs: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        for info in [p / RUN_INFO_NAME, *p.rglob(RUN_INFO_NAME)]:
            if info.exists() and (info.parent / METRICS_NAME).exists():
                runs.add(info.parent)
    if not runs:
        raise FileNotFoundError(
            f"no run directories (with {RUN_INFO_NAME} and {METRICS_NAME}) "
            f"under {[str(p) for p in paths]}"
        )
    return sorted(runs)


def _group_key(info: dict) -> tuple[str, str, str]:
    return (str(info.get("env", "?")), str(info.get("algo", "?")), str(info.get("strategy", "?")))


def _final(values: Sequence[float], fraction: float) -> float:
    n = max(1, math.ceil(len(values) * fraction))
    return float(np.mean(values[-n:]))


def summarise(run_dirs: Sequence[Path], final_fraction: float = 0.1) -> list[dict]:
    """One row per (env, algo, strategy): mean and std over seeds of final reward and cost, and
    the share of all epochs (over all seeds) whose episodic cost is within the limit."""
    if not 0 < final_fraction <= 1:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction}")
    groups: dict[tuple, list[tuple[dict, list[dict]]]] = defaultdict(list)
    for run in run_dirs:
        info = read_run_info(run)
        rows = [r for r in read_metrics(run) if math.isfinite(r.get("episode_cost", math.nan))]
        if rows:
            groups[_group_key(info)].append((info, rows))
    table = []
    for (env, algo, strategy), runs in sorted(groups.items()):
        rewards = [_final([r["episode_return"] for r in rows], final_fraction) for _, rows in runs]
        costs = [_final([r["episode_cost"] for r in rows], final_fraction) for _, rows in runs]
        limit = float(runs[0][0].get("cost_limit", math.nan))
        within = [r["episode_cost"] <= limit for _, rows in runs for r in rows]
        table.append(
            {
                "env": env,
                "algo": algo,
                "strategy": strategy,
                "seeds": len({info.get("seed") for info, _ in runs}),
                "runs": len(runs),
                "reward_mean": float(np.mean(rewards)),
                "reward_std": float(np.std(rewards)),
                "cost_mean": float(np.mean(costs)),
                "cost_std": float(np.std(costs)),
                "cost_limit": limit,
                "within_limit_share": float(np.mean(within)),
            }
        )
    return table


def to_markdown(table: Sequence[dict]) -> str:
    """The table as GitHub Markdown, mean ± std."""
    lines = [
        "| env | algo | strategy | seeds | reward | cost | limit | epochs within limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['env']} | {r['algo']} | {r['strategy']} | {r['seeds']} "
            f"| {r['reward_mean']:.1f} ± {r['reward_std']:.1f} "
            f"| {r['cost_mean']:.2f} ± {r['cost_std']:.2f} | {r['cost_limit']:g} "
            f"| {100 * r['within_limit_share']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def _mean_curve(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.array(sorted({r["env_steps"] for rows in runs for r in rows}), dtype=float)
    stop = min(max(r["env_steps"] for r in rows) for rows in runs)
    grid = grid[grid <= stop]
    ys = np.stack(
        [np.interp(grid, [r["env_steps"] for r in rows], [r[key] for r in rows]) for rows in runs]
    )
    return grid, ys.mean(0), ys.std(0)


def plot_comparison(run_dirs: Sequence[Path], path: Path) -> Path:
    """Mean episodic reward and cost curves (shaded ± one std over seeds), one row per task."""
    by_env: dict[str, dict[tuple, list[list[dict]]]] = defaultdict(lambda: defaultdict(list))
    limits: dict[str, float] = {}
    for run in run_dirs:
        info = read_run_info(run)
        env, algo, strategy = _group_key(info)
        by_env[env][(algo, strategy)].append(read_metrics(run))
        limits[env] = float(info.get("cost_limit", math.nan))
    fig, axes = plt.subplots(
        len(by_env), 2, figsize=(10, 3.6 * len(by_env)), squeeze=False, constrained_layout=True
    )
    for (env, groups), (ax_r, ax_c) in zip(sorted(by_env.items()), axes, strict=True):
        for (algo, strategy), runs in sorted(groups.items()):
            for ax, key in ((ax_r, "episode_return"), (ax_c, "episode_cost")):
                x, mean, std = _mean_curve(runs, key)
                (line,) = ax.plot(x, mean, label=f"{algo} + {strategy} ({len(runs)})")
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        if math.isfinite(limits[env]):
            ax_c.axhline(limits[env], color="black", linestyle="--", linewidth=1)
        ax_r.set(title=env, xlabel="environment steps", ylabel="episodic reward")
        ax_c.set(title=env, xlabel="environment steps", ylabel="episodic cost")
        ax_r.legend(fontsize=8)
        for ax in (ax_r, ax_c):
            ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_runs(
    paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike, final_fraction: float = 0.1
) -> list[dict]:
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.png`` into ``out_dir``."""
    runs = find_runs(paths)
    table = summarise(runs, final_fraction)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(to_markdown(table))
    with (out / "comparison.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    plot_comparison(runs, out / "comparison.png")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gradmanip-compare", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run directories, or folders holding them")
    parser.add_argument("--out", default="comparison", help="output folder (default: comparison)")
    parser.add_argument(
        "--final-fraction",
        type=float,
        default=0.1,
        help="share of last epochs averaged for final values (default 0.1)",
    )
    args = parser.parse_args(argv)
    table = compare_runs(args.paths, args.out, args.final_fraction)
    print(to_markdown(table), end="")
    out = Path(args.out)
    print(f"wrote {out / 'comparison.md'}, {out / 'comparison.csv'}, {out / 'comparison.png'}")


if __name__ == "__main__":
    main()
