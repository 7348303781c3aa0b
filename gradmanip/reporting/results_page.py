"""The results page: per task, a figure, the group tables (whole runs and as if stopped at
``cut`` steps) and the published anchors, written into the generated part of a Markdown page.

    gradmanip-compare results/velocity --page docs/results.md --figures docs/assets/results
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from gradmanip.reporting.anchors import anchors_for
from gradmanip.reporting.group_results import GroupResult, group_result
from gradmanip.reporting.grouping import RunGroup, group_runs
from gradmanip.reporting.page_block import check_page, write_block
from gradmanip.reporting.results_figures import plot_tasks
from gradmanip.reporting.results_markdown import (
    anchors_table,
    fmt_steps,
    reference_note,
    results_table,
)
from gradmanip.reporting.run_metrics import FINAL_FRACTION, REACH_FRACTIONS, WARMUP_FRACTION
from gradmanip.reporting.runs import SUITE_INFO_NAME, load_runs
from gradmanip.reporting.training_diagnostics import diagnostics_table

DEFAULT_CUT = 300_000


def legend(cut: float | None, fraction: float = FINAL_FRACTION) -> str:
    """What the columns mean."""
    shares = " / ".join(f"{s:.0%}" for s in REACH_FRACTIONS)
    text = (
        "Mean ± standard deviation over seeds (a single value: one seed). **reward**, **cost**: "
        "episodic reward and cost of the training episodes, averaged over the last "
        f"{fraction:.0%} of the epochs; with several constraints, one cost per constraint "
        f"(`c0 / c1`). **epochs within limit**: share of the epochs after the first "
        f"{WARMUP_FRACTION:.0%} whose episodic costs are all within their limits. **eval**: "
        "deterministic evaluation of the final policy (`summary.json`). **test reward**, "
        "**test cost** (runs that evaluate during training, `eval_every` > 0): the deterministic "
        f"evaluations made during training, averaged over the last {fraction:.0%} of them, the "
        "measure of the off-policy anchors (OmniSafe reports its off-policy algorithms by these "
        "test episodes, `TestEpRet` and `TestEpCost`). "
        f"**{shares} of ref.**: environment steps until the episodic reward first reached that "
        "share of the reference reward (the `reward_only` group of the same task, algorithm and "
        "budget: its final reward, averaged over its seeds) with every cost within its limit in "
        "that epoch; mean over the runs that got there (how many did / runs); —: none did, "
        "n/a: no reference. **Training diagnostics**, over the same last epochs: mean "
        "**episode length**, mean **episodes per epoch** (the episodes J_c_hat is estimated "
        "from), **cost spread** (standard deviation of the epochs' episodic cost: how much "
        "J_c_hat varies from one epoch to the next) and the share of the epochs after the first "
        f"{WARMUP_FRACTION:.0%} in each mode of the strategy (reward only / both objectives / "
        "cost only)."
    )
    if cut:
        text += (
            f" **As if stopped at {fmt_steps(cut)} steps**: the same from the epochs up to "
            f"{cut:,.0f} environment steps (the reference's too); the final policy's "
            "evaluation has no counterpart there."
        )
    return text + "\n"


def provenance(paths: Sequence[str | os.PathLike], runs: int) -> str:
    """Where the runs come from, with the suite's code revision where recorded."""
    where = ", ".join(f"`{p}`" for p in paths)
    text = f"From {runs} run{'s' if runs != 1 else ''} below {where}"
    for path in map(Path, paths):
        info = path / SUITE_INFO_NAME
        if info.exists():
            suite = json.loads(info.read_text())
            name = suite.get("suite", {}).get("name", path.name)
            text += f"; suite `{name}`, code revision `{suite.get('revision')}`"
            if (path / "versions.txt").exists():
                text += f", package versions in `{path / 'versions.txt'}`"
    return text + ".\n"


def _budget(group: RunGroup) -> float:
    if group.total_steps is not None:
        return group.total_steps
    return max((run.rows[-1]["env_steps"] for run in group.runs if run.rows), default=0)


def task_section(
    task: str,
    groups: Sequence[RunGroup],
    figure: str | None,
    cut: float | None = DEFAULT_CUT,
    fraction: float = FINAL_FRACTION,
) -> str:
    """The Markdown of one task: figure, tables, anchors."""
    mine = [g for g in groups if g.env == task]
    full: list[GroupResult] = [group_result(g, groups, None, fraction) for g in mine]
    parts = [f"## {task}\n"]
    if figure:
        parts.append(f"![{task}: mean episodic reward and cost over seeds, ± one std]({figure})\n")
    parts += [reference_note(full), results_table(full)]
    longer = [g for g in mine if cut and _budget(g) > cut]
    if longer:
        cut_results = [group_result(g, groups, cut, fraction) for g in longer]
        parts += [
            f"### As if stopped at {fmt_steps(cut)} steps\n",
            reference_note(cut_results, cut),
            results_table(cut_results, evaluated=False),
        ]
    parts += ["### Training diagnostics\n", diagnostics_table(mine, fraction)]
    anchors = anchors_for(task)
    if anchors:
        parts += ["### Anchors\n", anchors_table(anchors)]
    return "\n".join(parts)


def render_results(
    groups: Sequence[RunGroup],
    figures: Mapping[str, str],
    cut: float | None = DEFAULT_CUT,
    fraction: float = FINAL_FRACTION,
) -> str:
    """The generated part of the page: legend, then one section per task."""
    tasks = sorted({g.env for g in groups})
    sections = [task_section(t, groups, figures.get(t), cut, fraction) for t in tasks]
    cut_tables = cut and any(_budget(g) > cut for g in groups)
    return "\n".join([legend(cut if cut_tables else None, fraction), *sections])


def write_results_page(
    paths: Iterable[str | os.PathLike],
    page: str | os.PathLike,
    figures_dir: str | os.PathLike | None = None,
    cut: float | None = DEFAULT_CUT,
    fraction: float = FINAL_FRACTION,
) -> tuple[Path, dict[str, Path]]:
    """Write the figures and the generated part of ``page``; returns the page and the figures.

    ``figures_dir`` defaults to ``assets/<page name>/`` beside the page; the page links the
    figures by relative paths.
    """
    paths = list(paths)
    page = Path(page)
    check_page(page)
    groups = group_runs(load_runs(paths))
    folder = Path(figures_dir) if figures_dir is not None else page.parent / "assets" / page.stem
    figures = plot_tasks(groups, folder, cut)
    links = {t: Path(os.path.relpath(f, page.parent)).as_posix() for t, f in figures.items()}
    runs = sum(len(g.runs) for g in groups)
    block = provenance(paths, runs) + "\n" + render_results(groups, links, cut, fraction)
    return write_block(page, block), figures
