"""How a group trained, to explain its results: episode lengths, how many episodes estimate each
epoch's J_c_hat and how much it varies, and how often each strategy mode was active.

All figures come from ``metrics.csv``:

- **episode length**, **episodes per epoch**: means over the last ``fraction`` of the epochs;
- **cost spread**: the standard deviation of the epochs' episodic cost over those epochs, i.e.
  how much J_c_hat, the number a switching rule compares with its limit, varies between
  consecutive epochs of an almost fixed policy;
- **modes**: the share of the epochs after the first ``WARMUP_FRACTION`` spent in each mode of
  ``strategy/mode`` (reward only / both / cost only; see :mod:`gradmanip.strategies.base`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gradmanip.reporting.grouping import RunGroup
from gradmanip.reporting.results_markdown import DASH, fmt_mean_std, markdown_row
from gradmanip.reporting.run_metrics import FINAL_FRACTION, after_warmup, last_part
from gradmanip.reporting.runs import RunRecord

MODE_COLUMN = "strategy/mode"
MODES = (1, 0, 2)  # shown in this order: reward only, both, cost only (codes of strategies.base)


@dataclass(frozen=True)
class TrainingDiagnostics:
    """One run's diagnostics (see the module docstring); ``modes`` is empty without a mode
    column."""

    episode_length: float
    episodes_per_epoch: float
    cost_spread: float
    modes: dict[int, float]


def _finite(rows: Sequence, name: str) -> list[float]:
    """The rows' finite values of column ``name`` (rows without it are skipped)."""
    return [v for r in rows if name in r and math.isfinite(v := float(r[name]))]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _std(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def run_diagnostics(run: RunRecord, fraction: float = FINAL_FRACTION) -> TrainingDiagnostics:
    """The diagnostics of one run (NaN where its metrics lack the column)."""
    tail = last_part(run.rows, fraction)
    # epochs without a strategy step (SAC's warm-up) log no mode
    codes = [round(m) for m in _finite(after_warmup(run.rows), MODE_COLUMN)]
    modes = {m: codes.count(m) / len(codes) for m in MODES} if codes else {}
    return TrainingDiagnostics(
        episode_length=_mean(_finite(tail, "episode_length")),
        episodes_per_epoch=_mean(_finite(tail, "episodes")),
        cost_spread=_std(_finite(tail, run.cost_keys[0])) if run.cost_keys else math.nan,
        modes=modes,
    )


def diagnostics_table(groups: Sequence[RunGroup], fraction: float = FINAL_FRACTION) -> str:
    """One row per group: mean ± std over its seeds of each diagnostic."""
    header = [
        "strategy",
        "episode length",
        "episodes per epoch",
        "cost spread",
        "epochs: reward / both / cost",
    ]
    lines = [markdown_row(header), markdown_row(["---"] * len(header))]
    for group in sorted(groups, key=lambda g: (g.algo, g.strategy, g.label)):
        figures = [run_diagnostics(run, fraction) for run in group.runs]
        with_modes = [f for f in figures if f.modes]
        modes = (
            " / ".join(fmt_mean_std([f.modes[m] for f in with_modes], percent=True) for m in MODES)
            if with_modes
            else DASH
        )
        lines.append(
            markdown_row(
                [
                    group.name,
                    fmt_mean_std(f.episode_length for f in figures),
                    fmt_mean_std(f.episodes_per_epoch for f in figures),
                    fmt_mean_std(f.cost_spread for f in figures),
                    modes,
                ]
            )
        )
    return "\n".join(lines) + "\n"
