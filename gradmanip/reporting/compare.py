"""Compare runs: a table over seeds (Markdown + CSV), a plot of mean curves, a results page.

Usage::

    gradmanip-compare multirun/2026-11-25_12-00-00 --out results/
    gradmanip-compare results/velocity --page docs/results.md --figures docs/assets/results
    python -m gradmanip.reporting RUN_DIR [RUN_DIR ...] --out results/

Every directory given is searched for run directories (those holding ``run.json`` and
``metrics.csv``). Runs are grouped by task, algorithm, strategy and every other setting that
changes what is learned (see :mod:`gradmanip.reporting.grouping`); seeds are the spread. For each
run, the final reward and cost are averaged over its last ``final_fraction`` of epochs (at least
one), which is less noisy than the single last epoch. ``--page`` writes the results page (see
:mod:`gradmanip.reporting.results_page`).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gradmanip.reporting.grouping import RunGroup, group_runs  # noqa: E402
from gradmanip.reporting.mean_curve import mean_curve  # noqa: E402
from gradmanip.reporting.run_metrics import final_mean, within_limits  # noqa: E402
from gradmanip.reporting.runs import RunRecord, find_runs, load_run  # noqa: E402

__all__ = ["COLUMNS", "compare_runs", "find_runs", "main", "plot_comparison", "summarise"]

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
    "settings",
]


def _groups(run_dirs: Sequence[Path]) -> list[RunGroup]:
    """Groups of the runs that hold at least one finished episode."""
    groups = group_runs(load_run(run) for run in run_dirs)
    for group in groups:
        group.runs = [run for run in group.runs if run.rows]
    return [group for group in groups if group.runs]


def summarise(run_dirs: Sequence[Path], final_fraction: float = 0.1) -> list[dict]:
    """One row per group: mean and std over seeds of the final reward and cost, the cost limit,
    and the share of all epochs (over all seeds) within every cost limit. ``settings`` names
    what tells the group from others of its task, algorithm and strategy.

    With one constraint the cost fields are ``cost_mean``, ``cost_std``, ``cost_limit``. With
    K > 1 constraint k's are ``cost_mean_k``, ``cost_std_k``, ``cost_limit_k``, and
    ``cost_mean`` / ``cost_std`` are those of the total cost (``cost_limit`` is NaN: no limit
    applies to the total), as in ``metrics.csv``."""
    if not 0 < final_fraction <= 1:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction}")
    table = []
    for group in _groups(run_dirs):
        runs = group.runs
        rewards = [final_mean([r["episode_return"] for r in x.rows], final_fraction) for x in runs]
        within = [within_limits(r, run.cost_keys, run.limits) for run in runs for r in run.rows]
        row = {
            "env": group.env,
            "algo": group.algo,
            "strategy": group.strategy,
            "seeds": group.seeds,
            "runs": len(runs),
            "reward_mean": float(np.mean(rewards)),
            "reward_std": float(np.std(rewards)),
        }
        keys, limits = runs[0].cost_keys, runs[0].limits
        if len(keys) == 1:
            costs = [final_mean([r[keys[0]] for r in x.rows], final_fraction) for x in runs]
            row |= {
                "cost_mean": float(np.mean(costs)),
                "cost_std": float(np.std(costs)),
                "cost_limit": limits[0],
            }
        else:
            totals = [_final_total(x, final_fraction) for x in runs]
            row |= {"cost_mean": float(np.mean(totals)), "cost_std": float(np.std(totals))}
            row["cost_limit"] = math.nan
            for k, (key, limit) in enumerate(zip(keys, limits, strict=True)):
                costs = [final_mean([r[key] for r in x.rows], final_fraction) for x in runs]
                row[f"cost_mean_{k}"] = float(np.mean(costs))
                row[f"cost_std_{k}"] = float(np.std(costs))
                row[f"cost_limit_{k}"] = limit
        row |= {"within_limit_share": float(np.mean(within)), "settings": group.label}
        table.append(row)
    return table


def _final_total(run: RunRecord, final_fraction: float) -> float:
    """Final total cost of a run with several constraints (the sum of its constraints')."""
    return final_mean([sum(r[k] for k in run.cost_keys) for r in run.rows], final_fraction)


def num_constraints(row: dict) -> int:
    """K of a :func:`summarise` row."""
    k = 0
    while f"cost_mean_{k}" in row:
        k += 1
    return k or 1


def csv_columns(table: Sequence[dict]) -> list[str]:
    """:data:`COLUMNS`, with the per-constraint columns of the table's largest K after
    ``cost_limit``."""
    k = max((num_constraints(row) for row in table), default=1)
    if k == 1:
        return list(COLUMNS)
    per = [f"cost_{what}_{i}" for i in range(k) for what in ("mean", "std", "limit")]
    at = COLUMNS.index("cost_limit") + 1
    return [*COLUMNS[:at], *per, *COLUMNS[at:]]


def _cost_cells(row: dict) -> tuple[str, str]:
    """The cost and limit cells: ``mean ± std`` (per constraint ``c0 / c1``) and ``b0 / b1``."""
    k = num_constraints(row)
    if k == 1:
        return f"{row['cost_mean']:.2f} ± {row['cost_std']:.2f}", f"{row['cost_limit']:g}"
    costs = " / ".join(
        f"{row[f'cost_mean_{i}']:.2f} ± {row[f'cost_std_{i}']:.2f}" for i in range(k)
    )
    return costs, " / ".join(f"{row[f'cost_limit_{i}']:g}" for i in range(k))


def to_markdown(table: Sequence[dict]) -> str:
    """The table as GitHub Markdown, mean ± std; with several constraints the cost and limit
    cells list them in order (``c0 / c1``), and "epochs within limit" counts the epochs within
    every limit."""
    lines = [
        "| env | algo | strategy | seeds | reward | cost | limit | epochs within limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        strategy = f"{r['strategy']} ({r['settings']})" if r.get("settings") else r["strategy"]
        cost, limit = _cost_cells(r)
        lines.append(
            f"| {r['env']} | {r['algo']} | {strategy} | {r['seeds']} "
            f"| {r['reward_mean']:.1f} ± {r['reward_std']:.1f} "
            f"| {cost} | {limit} "
            f"| {100 * r['within_limit_share']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def plot_comparison(run_dirs: Sequence[Path], path: Path) -> Path:
    """Mean episodic reward and cost curves (shaded ± one std over seeds), one row per task:
    the reward, then one cost panel per constraint with its limit dashed."""
    groups = _groups(run_dirs)
    envs = sorted({g.env for g in groups})
    k_max = max(len(g.runs[0].cost_keys) for g in groups)
    fig, axes = plt.subplots(
        len(envs),
        1 + k_max,
        figsize=(5 * (1 + k_max), 3.6 * len(envs)),
        squeeze=False,
        constrained_layout=True,
    )
    for env, (ax_r, *ax_costs) in zip(envs, axes, strict=True):
        limits: list[set[float]] = [set() for _ in range(k_max)]
        k = 0
        for group in (g for g in groups if g.env == env):
            curves = [run.rows for run in group.runs]
            keys = group.runs[0].cost_keys
            k = max(k, len(keys))
            panels = ((ax_r, "episode_return"), *zip(ax_costs, keys, strict=False))
            for ax, key in panels:
                x, mean, std = mean_curve(curves, key)
                label = f"{group.algo} + {group.name} ({len(curves)})"
                (line,) = ax.plot(x, mean, label=label)
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            for i, limit in enumerate(group.runs[0].limits):
                limits[i].add(limit)
        for i, ax_c in enumerate(ax_costs):
            if i >= k:
                ax_c.set_visible(False)
                continue
            for limit in sorted(v for v in limits[i] if math.isfinite(v)):
                ax_c.axhline(limit, color="black", linestyle="--", linewidth=1)
            ylabel = "episodic cost" if k == 1 else f"episodic cost {i}"
            ax_c.set(title=env, xlabel="environment steps", ylabel=ylabel)
            ax_c.grid(alpha=0.3)
        ax_r.set(title=env, xlabel="environment steps", ylabel="episodic reward")
        ax_r.legend(fontsize=8)
        ax_r.grid(alpha=0.3)
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
        writer = csv.DictWriter(f, fieldnames=csv_columns(table))
        writer.writeheader()
        writer.writerows(table)
    plot_comparison(runs, out / "comparison.png")
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradmanip-compare", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run directories, or folders holding them")
    parser.add_argument(
        "--out", help="folder for comparison.md/.csv/.png (default: comparison, without --page)"
    )
    parser.add_argument(
        "--final-fraction",
        type=float,
        default=0.1,
        help="share of last epochs averaged for final values (default 0.1)",
    )
    page = parser.add_argument_group("results page")
    page.add_argument(
        "--page",
        type=Path,
        help="Markdown page whose generated part receives the results (created if missing)",
    )
    page.add_argument(
        "--figures",
        type=Path,
        help="folder of the per-task figures (default: assets/<page name>/ beside the page)",
    )
    page.add_argument(
        "--headline",
        type=Path,
        help="Markdown file (e.g. README.md) whose generated part receives the headline table",
    )
    page.add_argument(
        "--cut-steps",
        type=float,
        default=300_000,
        help="also tabulate as if training had stopped at this many steps (0: not; default 300000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.figures is not None and args.page is None:
        parser.error("--figures needs --page")
    if not 0 < args.final_fraction <= 1:
        parser.error(f"--final-fraction must be in (0, 1], got {args.final_fraction}")
    if args.cut_steps < 0:
        parser.error(f"--cut-steps must be >= 0, got {args.cut_steps:g}")
    try:
        if args.page is not None:
            from gradmanip.reporting.results_page import write_results_page

            page, figures = write_results_page(
                args.paths, args.page, args.figures, args.cut_steps or None, args.final_fraction
            )
            print(f"wrote {page}")
            for figure in figures.values():
                print(f"wrote {figure}")
        if args.headline is not None:
            from gradmanip.reporting.headline import write_headline

            print(f"wrote {write_headline(args.paths, args.headline, args.final_fraction)}")
        if args.out is not None or (args.page is None and args.headline is None):
            out = Path(args.out or "comparison")
            table = compare_runs(args.paths, out, args.final_fraction)
            print(to_markdown(table), end="")
            written = ", ".join(str(out / f"comparison.{ext}") for ext in ("md", "csv", "png"))
            print(f"wrote {written}")
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
